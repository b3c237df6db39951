// Package archive turns a forge's tarball of a repository at a commit into a checkout on disk,
// once per commit: unpacked safely (nothing outside the target, no links out, size and file
// limits) and kept in a cache bounded by the number of checkouts.
package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Limits bound one unpacked archive.
type Limits struct {
	MaxBytes    int64 // all files
	MaxFileSize int64 // one file
	MaxFiles    int
}

// DefaultLimits fit large manifest repositories.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 1 << 30, MaxFileSize: 64 << 20, MaxFiles: 100000}
}

// Fetch downloads a gzipped tarball.
type Fetch func(ctx context.Context) (io.ReadCloser, error)

// Cache keeps checkouts under Dir, keyed by repository and commit.
type Cache struct {
	Dir    string
	Limits Limits
	// Keep is how many checkouts stay on disk (least recently used go first).
	Keep int

	mu      sync.Mutex
	pending map[string]*sync.Mutex
}

// NewCache returns a cache in dir.
func NewCache(dir string, keep int) *Cache {
	return &Cache{Dir: dir, Limits: DefaultLimits(), Keep: keep, pending: map[string]*sync.Mutex{}}
}

// Checkout returns the directory holding repo at sha, downloading it with fetch only when it is
// not cached. Concurrent calls for the same commit download once.
func (c *Cache) Checkout(ctx context.Context, repo, sha string, fetch Fetch) (string, error) {
	sum := sha256.Sum256([]byte(repo + "@" + sha))
	key := hex.EncodeToString(sum[:16])
	dir := filepath.Join(c.Dir, key)

	c.mu.Lock()
	lock, ok := c.pending[key]
	if !ok {
		lock = &sync.Mutex{}
		c.pending[key] = lock
	}
	c.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()

	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		now := time.Now()
		_ = os.Chtimes(dir, now, now) // mark as recently used
		return dir, nil
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("archive cache %s: %w", c.Dir, err)
	}
	tmp, err := os.MkdirTemp(c.Dir, key+".tmp-")
	if err != nil {
		return "", fmt.Errorf("archive cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	body, err := fetch(ctx)
	if err != nil {
		return "", fmt.Errorf("download %s@%s: %w", repo, sha, err)
	}
	defer body.Close()
	if err := Extract(body, tmp, c.Limits); err != nil {
		return "", fmt.Errorf("unpack %s@%s: %w", repo, sha, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("archive cache: %w", err)
	}
	c.evict(key)
	return dir, nil
}

// evict removes the least recently used checkouts beyond Keep, never the one just made.
func (c *Cache) evict(keep string) {
	if c.Keep <= 0 {
		return
	}
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	type entry struct {
		name string
		used time.Time
	}
	var dirs []entry
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.IsDir() && !strings.Contains(e.Name(), ".tmp-") {
			dirs = append(dirs, entry{e.Name(), info.ModTime()})
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].used.After(dirs[j].used) })
	for i, d := range dirs {
		if i >= c.Keep && d.name != keep {
			_ = os.RemoveAll(filepath.Join(c.Dir, d.name))
		}
	}
}

// Extract unpacks a gzipped tarball into dest. Forges wrap the tree in one top-level directory
// (owner-repo-sha/); it is stripped. Entries that would land outside dest, absolute paths,
// links pointing outside the tree, devices and archives over the limits are refused.
func Extract(r io.Reader, dest string, l Limits) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzipped tarball: %w", err)
	}
	tr := tar.NewReader(gz)
	var total int64
	files := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name, ok := stripTop(h.Name)
		if !ok {
			continue
		}
		if strings.HasPrefix(h.Name, "/") || !filepath.IsLocal(filepath.FromSlash(name)) {
			return fmt.Errorf("entry %q points outside the checkout", h.Name)
		}
		target := filepath.Join(dest, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			files++
			if files > l.MaxFiles {
				return fmt.Errorf("archive has more than %d files", l.MaxFiles)
			}
			if h.Size > l.MaxFileSize {
				return fmt.Errorf("%s is %d bytes, over the limit of %d", name, h.Size, l.MaxFileSize)
			}
			total += h.Size
			if total > l.MaxBytes {
				return fmt.Errorf("archive unpacks to more than %d bytes", l.MaxBytes)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		case tar.TypeSymlink:
			// Relative links inside the tree are kept (charts and overlays use them); anything
			// else is refused. Reads go through os.Root later, which refuses escapes anyway.
			if path.IsAbs(h.Linkname) || !filepath.IsLocal(filepath.FromSlash(path.Join(path.Dir(name), h.Linkname))) {
				return fmt.Errorf("link %s -> %s points outside the checkout", name, h.Linkname)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return fmt.Errorf("link %s: %w", name, err)
			}
		case tar.TypeXGlobalHeader:
			// GitHub's tarballs carry the commit id here.
		default:
			return fmt.Errorf("entry %s has unsupported type %q", name, string(h.Typeflag))
		}
	}
}

// stripTop removes the archive's top-level directory; ok is false for the top entry itself.
func stripTop(name string) (string, bool) {
	name = strings.TrimPrefix(name, "./")
	_, rest, found := strings.Cut(name, "/")
	if !found || strings.Trim(rest, "/") == "" {
		return "", false
	}
	return strings.TrimSuffix(rest, "/"), true
}
