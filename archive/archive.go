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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubeplan/kubeplan/internal/redact"
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
	// MaxBytes bounds the unpacked size of all checkouts kept; the least recently used go
	// first (the one just made always stays).
	MaxBytes int64

	mu      sync.Mutex
	pending map[string]*sync.Mutex
}

// NewCache returns a cache in dir holding at most maxBytes of checkouts.
func NewCache(dir string, maxBytes int64) *Cache {
	return &Cache{Dir: dir, Limits: DefaultLimits(), MaxBytes: maxBytes, pending: map[string]*sync.Mutex{}}
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
	// Download links carry tokens (GitHub's codeload); errors quoting them are redacted.
	body, err := fetch(ctx)
	if err != nil {
		return "", fmt.Errorf("download %s@%s: %w", repo, sha, redact.Error(err))
	}
	defer body.Close()
	size, err := Extract(body, tmp, c.Limits)
	if err != nil {
		return "", fmt.Errorf("unpack %s@%s: %w", repo, sha, redact.Error(err))
	}
	// The marker records the checkout's size for eviction.
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(strconv.FormatInt(size, 10)), 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("archive cache: %w", err)
	}
	c.evict(key)
	return dir, nil
}

// evict removes the least recently used checkouts until the rest fit in MaxBytes, never the
// one just made.
func (c *Cache) evict(keep string) {
	if c.MaxBytes <= 0 {
		return
	}
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	type entry struct {
		name string
		used time.Time
		size int64
	}
	var dirs []entry
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !e.IsDir() || strings.Contains(e.Name(), ".tmp-") {
			continue
		}
		marker, err := os.ReadFile(filepath.Join(c.Dir, e.Name(), ".complete"))
		if err != nil {
			continue
		}
		size, _ := strconv.ParseInt(string(marker), 10, 64)
		dirs = append(dirs, entry{e.Name(), info.ModTime(), size})
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].used.After(dirs[j].used) })
	var total int64
	for _, d := range dirs {
		total += d.size
		if total > c.MaxBytes && d.name != keep {
			_ = os.RemoveAll(filepath.Join(c.Dir, d.name))
			total -= d.size
		}
	}
}

// Extract unpacks a gzipped tarball into dest. Forges wrap the tree in one top-level directory
// (owner-repo-sha/); it is stripped. Entries that would land outside dest, absolute paths,
// links pointing outside the tree, devices and archives over the limits are refused. It
// returns the bytes written.
func Extract(r io.Reader, dest string, l Limits) (int64, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return 0, fmt.Errorf("not a gzipped tarball: %w", err)
	}
	// Every write goes through an os.Root: the names are checked below, but a path may still
	// pass through a link the archive made earlier (s -> ., then s/s/l -> ../..), and only
	// the kernel-side resolution of os.Root sees where it really lands.
	root, err := os.OpenRoot(dest)
	if err != nil {
		return 0, fmt.Errorf("open checkout directory: %w", err)
	}
	defer root.Close()
	tr := tar.NewReader(gz)
	var total int64
	files := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("read archive: %w", err)
		}
		name, ok := stripTop(h.Name)
		if !ok {
			continue
		}
		if strings.HasPrefix(h.Name, "/") || !filepath.IsLocal(filepath.FromSlash(name)) {
			return total, fmt.Errorf("entry %q points outside the checkout", h.Name)
		}
		target := filepath.FromSlash(name) // inside root
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(target, 0o755); err != nil {
				return total, fmt.Errorf("directory %s: %w", name, err)
			}
		case tar.TypeReg:
			files++
			if files > l.MaxFiles {
				return total, fmt.Errorf("archive has more than %d files", l.MaxFiles)
			}
			if h.Size > l.MaxFileSize {
				return total, fmt.Errorf("%s is %d bytes, over the limit of %d", name, h.Size, l.MaxFileSize)
			}
			total += h.Size
			if total > l.MaxBytes {
				return total, fmt.Errorf("archive unpacks to more than %d bytes", l.MaxBytes)
			}
			if err := root.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return total, fmt.Errorf("write %s: %w", name, err)
			}
			f, err := root.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return total, fmt.Errorf("write %s: %w", name, err)
			}
			_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return total, fmt.Errorf("write %s: %w", name, err)
			}
		case tar.TypeSymlink:
			// Relative links inside the tree are kept (charts and overlays use them); anything
			// else is refused. Reads go through os.Root later, which refuses escapes anyway.
			if path.IsAbs(h.Linkname) || !filepath.IsLocal(filepath.FromSlash(path.Join(path.Dir(name), h.Linkname))) {
				return total, fmt.Errorf("link %s -> %s points outside the checkout", name, h.Linkname)
			}
			if err := root.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return total, fmt.Errorf("link %s: %w", name, err)
			}
			if err := root.Symlink(h.Linkname, target); err != nil {
				return total, fmt.Errorf("link %s: %w", name, err)
			}
		case tar.TypeXGlobalHeader:
			// GitHub's tarballs carry the commit id here.
		default:
			return total, fmt.Errorf("entry %s has unsupported type %q", name, string(h.Typeflag))
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
