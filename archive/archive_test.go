package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

type entry struct {
	name, body, link string
	typ              byte
}

func tarball(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if !writeTarball(&buf, entries) {
		t.Fatal("cannot write the test tarball")
	}
	return buf.Bytes()
}

// writeTarball writes entries as a gzipped tarball; false when tar cannot encode one.
func writeTarball(buf *bytes.Buffer, entries []entry) bool {
	gz := gzip.NewWriter(buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: e.typ, Linkname: e.link}
		if e.typ == tar.TypeXGlobalHeader { // as GitHub writes it: the commit id
			h = &tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "9f2c1e7"}}
		}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return false
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	return tw.Close() == nil && gz.Close() == nil
}

func TestExtractStripsTheTopDirectory(t *testing.T) {
	dest := t.TempDir()
	data := tarball(t,
		entry{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		entry{name: "acme-platform-9f2c1e7/", typ: tar.TypeDir},
		entry{name: "acme-platform-9f2c1e7/apps/web/deploy.yaml", body: "kind: Deployment\n"},
		entry{name: "acme-platform-9f2c1e7/apps/web/current", typ: tar.TypeSymlink, link: "deploy.yaml"},
	)
	if _, err := Extract(bytes.NewReader(data), dest, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dest, "apps/web/current"))
	if err != nil || string(b) != "kind: Deployment\n" {
		t.Fatalf("%q %v", b, err)
	}
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	small := DefaultLimits()
	small.MaxFileSize, small.MaxFiles, small.MaxBytes = 10, 2, 15
	cases := map[string]struct {
		entries []entry
		want    string
	}{
		"dot-dot":           {[]entry{{name: "top/../../etc/cron.d/x", body: "x"}}, "points outside the checkout"},
		"absolute":          {[]entry{{name: "/etc/passwd", body: "x"}}, "points outside the checkout"},
		"link out":          {[]entry{{name: "top/a", typ: tar.TypeSymlink, link: "../../../etc/passwd"}}, "points outside the checkout"},
		"absolute link":     {[]entry{{name: "top/a", typ: tar.TypeSymlink, link: "/etc/passwd"}}, "points outside the checkout"},
		"device":            {[]entry{{name: "top/dev", typ: tar.TypeChar}}, "unsupported type"},
		"file too big":      {[]entry{{name: "top/big", body: strings.Repeat("x", 11)}}, "over the limit of 10"},
		"too many files":    {[]entry{{name: "top/a", body: "1"}, {name: "top/b", body: "2"}, {name: "top/c", body: "3"}}, "more than 2 files"},
		"too many bytes":    {[]entry{{name: "top/a", body: "123456789"}, {name: "top/b", body: "123456789"}}, "more than 15 bytes"},
		"hard link refused": {[]entry{{name: "top/h", typ: tar.TypeLink, link: "/etc/shadow"}}, "unsupported type"},
		// Each name and link looks local, but s -> . makes s/s/s/l land at l, three levels
		// above which is outside: the write through it must not leave the checkout.
		"write through a link chain": {[]entry{{name: "top/s", typ: tar.TypeSymlink, link: "."},
			{name: "top/s/s/s/l", typ: tar.TypeSymlink, link: "../../.."}, {name: "top/l/escaped", body: "x"}}, "escapes"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "a", "b", "c", "checkout")
			if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := Extract(bytes.NewReader(tarball(t, c.entries...)), dest, small)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			assertOnlyInside(t, parent, dest)
		})
	}
	if _, err := Extract(strings.NewReader("not gzip"), t.TempDir(), small); err == nil {
		t.Fatal("accepted garbage")
	}
}

func TestCheckoutDownloadsEachCommitOnce(t *testing.T) {
	cache := NewCache(t.TempDir(), 6) // room for two 3-byte checkouts
	var downloads int32
	fetch := func(sha string) Fetch {
		return func(context.Context) (io.ReadCloser, error) {
			atomic.AddInt32(&downloads, 1)
			return io.NopCloser(bytes.NewReader(tarball(t, entry{name: "top/sha.txt", body: sha}))), nil
		}
	}
	var wg sync.WaitGroup
	dirs := make([]string, 8)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := cache.Checkout(context.Background(), "acme/platform", "aaa", fetch("aaa"))
			if err != nil {
				t.Error(err)
			}
			dirs[i] = d
		}()
	}
	wg.Wait()
	if downloads != 1 {
		t.Fatalf("%d downloads for one commit", downloads)
	}
	for _, sha := range []string{"bbb", "ccc"} {
		if _, err := cache.Checkout(context.Background(), "acme/platform", sha, fetch(sha)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(dirs[0]); !os.IsNotExist(err) {
		t.Errorf("the least recently used checkout was not evicted (6 bytes kept): %v", err)
	}
	if _, err := cache.Checkout(context.Background(), "acme/platform", "bad", func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarball(t, entry{name: "top/../x", body: "x"}))), nil
	}); err == nil || !strings.Contains(err.Error(), "unpack acme/platform@bad") {
		t.Fatalf("hostile archive: %v", err)
	}
}

// assertOnlyInside fails t when anything under parent lies outside dest (and the
// directories leading to it).
func assertOnlyInside(t *testing.T, parent, dest string) {
	t.Helper()
	err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dest || strings.HasPrefix(p, dest+string(filepath.Separator)) || strings.HasPrefix(dest, p+string(filepath.Separator)) || p == parent {
			return nil
		}
		t.Errorf("the archive wrote %s, outside the checkout", p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
