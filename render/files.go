package render

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// budget reads files through an fs.FS (an os.Root, so links cannot leave the repository)
// while counting files and bytes against the limits.
type budget struct {
	fsys   fs.FS
	limits Limits
	files  int
	bytes  int64
}

func newBudget(fsys fs.FS, l Limits) *budget { return &budget{fsys: fsys, limits: l} }

func (b *budget) read(name string) ([]byte, error) {
	b.files++
	if b.files > b.limits.MaxFiles {
		return nil, &Error{File: name, Reason: fmt.Sprintf("more than %d files to read", b.limits.MaxFiles)}
	}
	f, err := b.fsys.Open(name)
	if err != nil {
		return nil, &Error{File: name, Reason: "cannot read: " + describeFSError(err), Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, b.limits.MaxFileBytes+1))
	if err != nil {
		return nil, &Error{File: name, Reason: "cannot read: " + describeFSError(err), Err: err}
	}
	if int64(len(data)) > b.limits.MaxFileBytes {
		return nil, &Error{File: name, Reason: fmt.Sprintf("file is larger than the limit of %d bytes", b.limits.MaxFileBytes)}
	}
	b.bytes += int64(len(data))
	if b.bytes > b.limits.MaxTotalBytes {
		return nil, &Error{File: name, Reason: fmt.Sprintf("files read exceed the limit of %d bytes in all", b.limits.MaxTotalBytes)}
	}
	return data, nil
}

// walk visits regular files under dir in lexical order, skipping VCS directories.
// skipDir may prune a directory (return true) after seeing it.
func (b *budget) walk(dir string, skipDir func(string) bool, visit func(name string) error) error {
	return fs.WalkDir(b.fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return &Error{File: p, Reason: "cannot read: " + describeFSError(err), Err: err}
		}
		if d.IsDir() {
			if p != dir && (d.Name() == ".git" || skipDir != nil && skipDir(p)) {
				return fs.SkipDir
			}
			return nil
		}
		// Links are visited like files: os.Root follows them only while they stay inside.
		return visit(p)
	})
}

// describeFSError turns os.Root's refusals into words a user understands.
func describeFSError(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "path escapes from parent"):
		return "a link points outside the repository"
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return msg
}

func isManifestFile(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}
