package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// checkoutFS is the file system kustomize sees: the repository, read-only, at "/". Every read
// goes through the repository's os.Root (a link cannot leave it) and counts against the render's
// limits, a file read twice counting twice, so that a kustomization naming one big file many
// times is refused rather than held many times. YAML that kustomize reads has its aliases
// measured first (kustomize expands them). The first refusal is kept in err: kustomize wraps
// errors in its own words, and this one names the file and the limit.
type checkoutFS struct {
	b   *budget
	err error
}

var _ filesys.FileSystem = (*checkoutFS)(nil)

var errReadOnly = errors.New("the repository is read-only while rendering")

// rel maps a path kustomize uses (absolute from "/", or relative to it) to the repository's.
func (c *checkoutFS) rel(p string) (string, error) {
	r := path.Clean(strings.TrimPrefix(filepath.ToSlash(p), "/"))
	if r == ".." || strings.HasPrefix(r, "../") {
		return "", &fs.PathError{Op: "open", Path: p, Err: errors.New("outside the repository")}
	}
	return r, nil
}

func abs(rel string) string { return path.Join("/", rel) }

func (c *checkoutFS) stat(p string) (fs.FileInfo, error) {
	r, err := c.rel(p)
	if err != nil {
		return nil, err
	}
	return fs.Stat(c.b.fsys, r)
}

func (c *checkoutFS) ReadFile(p string) ([]byte, error) {
	r, err := c.rel(p)
	if err != nil {
		return nil, err
	}
	data, err := c.b.read(r)
	if err != nil {
		// kustomize probes for files that need not exist; a limit or a link out of the
		// repository is the render's error.
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.EISDIR) && c.err == nil {
			c.err = err
		}
		return nil, err
	}
	// kustomize parses YAML with the parser that measures here: what it cannot parse, kustomize
	// cannot expand either.
	if _, aerr := checkAliases(data, c.b.limits.MaxOutputBytes); aerr != nil && !errors.Is(aerr, errUncheckable) {
		err := &Error{File: r, Reason: aerr.Error(), Err: aerr}
		if c.err == nil {
			c.err = err
		}
		return nil, err
	}
	return data, nil
}

func (c *checkoutFS) Open(p string) (filesys.File, error) {
	data, err := c.ReadFile(p)
	if err != nil {
		return nil, err
	}
	fi, err := c.stat(p)
	if err != nil {
		return nil, err
	}
	return &readOnlyFile{Reader: bytes.NewReader(data), fi: fi}, nil
}

func (c *checkoutFS) IsDir(p string) bool {
	fi, err := c.stat(p)
	return err == nil && fi.IsDir()
}

func (c *checkoutFS) Exists(p string) bool {
	_, err := c.stat(p)
	return err == nil
}

func (c *checkoutFS) ReadDir(p string) ([]string, error) {
	r, err := c.rel(p)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(c.b.fsys, r)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// CleanedAbs splits a path into its directory and file name as kustomize's loader expects;
// paths are cleaned by their text (a link inside the repository is followed by os.Root).
func (c *checkoutFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	r, err := c.rel(p)
	if err != nil {
		return "", "", err
	}
	fi, err := fs.Stat(c.b.fsys, r)
	if err != nil {
		return "", "", fmt.Errorf("'%s' doesn't exist: %w", abs(r), err)
	}
	if fi.IsDir() {
		return filesys.ConfirmedDir(abs(r)), "", nil
	}
	return filesys.ConfirmedDir(abs(path.Dir(r))), path.Base(r), nil
}

func (c *checkoutFS) Glob(pattern string) ([]string, error) {
	r, err := c.rel(pattern)
	if err != nil {
		return nil, err
	}
	matches, err := fs.Glob(c.b.fsys, r)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		out = append(out, abs(m))
	}
	if !filesys.IsHiddenFilePath(pattern) {
		out = filesys.RemoveHiddenFiles(out)
	}
	sort.Strings(out)
	return out, nil
}

func (c *checkoutFS) Walk(p string, walkFn filepath.WalkFunc) error {
	r, err := c.rel(p)
	if err != nil {
		return err
	}
	return fs.WalkDir(c.b.fsys, r, func(name string, d fs.DirEntry, err error) error {
		var fi fs.FileInfo
		if err == nil {
			fi, err = d.Info()
		}
		return walkFn(abs(name), fi, err)
	})
}

func (c *checkoutFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (c *checkoutFS) Mkdir(string) error                  { return errReadOnly }
func (c *checkoutFS) MkdirAll(string) error               { return errReadOnly }
func (c *checkoutFS) RemoveAll(string) error              { return errReadOnly }
func (c *checkoutFS) WriteFile(string, []byte) error      { return errReadOnly }

type readOnlyFile struct {
	*bytes.Reader
	fi fs.FileInfo
}

func (f *readOnlyFile) Write([]byte) (int, error)  { return 0, errReadOnly }
func (f *readOnlyFile) Close() error               { return nil }
func (f *readOnlyFile) Stat() (os.FileInfo, error) { return f.fi, nil }
