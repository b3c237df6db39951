package archive

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract builds a tarball from a script of entries, one per line: "f NAME BODY",
// "d NAME", "l NAME TARGET" (symlink) or "h NAME TARGET" (hard link), and unpacks it. Whatever
// the entries, nothing may be written outside the checkout, and the limits hold.
func FuzzExtract(f *testing.F) {
	for _, seed := range []string{
		"d top/\nf top/apps/web/deploy.yaml kind: Deployment\nl top/apps/web/current deploy.yaml",
		"l top/s .\nl top/s/s/s/l ../../..\nf top/l/escaped x",
		"l top/a ../../etc\nf top/a/passwd x",
		"f top/../../x y",
		"l top/d sub/deeper\nl top/d/up ../..\nf top/up/x y",
		"h top/h /etc/shadow",
		"f top/a 1\nf top/b 2\nf top/c 3",
	} {
		f.Add(seed)
	}
	limits := Limits{MaxBytes: 64, MaxFileSize: 32, MaxFiles: 8}
	f.Fuzz(func(t *testing.T, script string) {
		var entries []entry
		for _, line := range strings.Split(script, "\n") {
			fields := strings.SplitN(line, " ", 3)
			if len(fields) < 2 || fields[1] == "" {
				continue
			}
			e := entry{name: fields[1]}
			arg := ""
			if len(fields) == 3 {
				arg = fields[2]
			}
			switch fields[0] {
			case "f":
				e.body = arg
			case "d":
				e.typ = tar.TypeDir
			case "l":
				e.typ, e.link = tar.TypeSymlink, arg
			case "h":
				e.typ, e.link = tar.TypeLink, arg
			default:
				continue
			}
			entries = append(entries, e)
		}
		var buf bytes.Buffer
		if !writeTarball(&buf, entries) {
			return // names tar itself cannot write
		}
		parent := t.TempDir()
		dest := filepath.Join(parent, "a", "b", "c", "checkout")
		if err := os.MkdirAll(dest, 0o755); err != nil {
			t.Fatal(err)
		}
		total, err := Extract(&buf, dest, limits)
		if err == nil && total > limits.MaxBytes {
			t.Fatalf("unpacked %d bytes, over the limit of %d", total, limits.MaxBytes)
		}
		assertOnlyInside(t, parent, dest)
	})
}
