package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kubeplan/kubeplan/internal/imagebuild"
)

// readArchive opens an OCI archive the way skopeo's oci-archive transport does: unpack the
// layout, find the image the index names refName.
func readArchive(t *testing.T, path, refName string) v1.Image {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("archive: %v", err)
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("archive is not an OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == refName {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("archive's index names no image %q: %+v", refName, im.Manifests)
	return nil
}

// files lists the image's filesystem: name → header, and the content of regular files.
func files(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	headers, contents := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers, contents
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		headers[name] = h
		if h.Typeflag == tar.TypeReg {
			if contents[name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestImageRunsAsNonRootWithOnlyTheBinaryAndNoShell(t *testing.T) {
	opts := imagebuild.Options{Binary: []byte("\x7fELF not really"), CABundle: []byte("-----BEGIN CERTIFICATE-----\n"), Version: "1.2.3", Arch: "arm64"}
	img, err := imagebuild.Image(opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want the unprivileged 65532:65532", cfg.Config.User)
	}
	if got := strings.Join(cfg.Config.Entrypoint, " ") + " | " + strings.Join(cfg.Config.Cmd, " "); got != "/kubeplan | serve" {
		t.Errorf("entrypoint | cmd = %q", got)
	}
	if cfg.OS != "linux" || cfg.Architecture != "arm64" || cfg.Config.Labels["org.opencontainers.image.version"] != "1.2.3" {
		t.Errorf("platform %s/%s, labels %v", cfg.OS, cfg.Architecture, cfg.Config.Labels)
	}

	headers, contents := files(t, img)
	var names []string
	for n := range headers {
		names = append(names, n)
	}
	sort.Strings(names)
	want := "etc etc/group etc/passwd etc/ssl etc/ssl/certs etc/ssl/certs/ca-certificates.crt home home/nonroot kubeplan tmp var var/lib var/lib/kubeplan"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("image files:\n%s\nwant exactly (no shell, no package manager):\n%s", got, want)
	}
	if !bytes.Equal(contents["kubeplan"], opts.Binary) || headers["kubeplan"].Mode != 0o555 {
		t.Errorf("binary: %d bytes, mode %o", len(contents["kubeplan"]), headers["kubeplan"].Mode)
	}
	if h := headers["var/lib/kubeplan"]; h.Uid != 65532 || h.Gid != 65532 {
		t.Errorf("state directory owned by %d:%d, want the image's user", h.Uid, h.Gid)
	}
	if !strings.Contains(string(contents["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("passwd has no entry for the image's user:\n%s", contents["etc/passwd"])
	}

	// The same inputs give the same image, byte for byte: nothing depends on the clock.
	again, err := imagebuild.Image(opts)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("digests differ for the same inputs: %s, %s", d1, d2)
	}
}

func TestArchiveIsAnOCILayoutNamingTheImage(t *testing.T) {
	img, err := imagebuild.Image(imagebuild.Options{Binary: []byte("binary"), Version: "0.9.0"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out", "kubeplan-image.tar")
	if err := imagebuild.WriteArchive(path, img, "0.9.0"); err != nil {
		t.Fatal(err)
	}
	back := readArchive(t, path, "0.9.0")
	want, _ := img.Digest()
	got, err := back.Digest()
	if err != nil || got != want {
		t.Fatalf("image read back from the archive: %s (%v), want %s", got, err, want)
	}
	if _, contents := files(t, back); string(contents["kubeplan"]) != "binary" {
		t.Errorf("binary read back: %q", contents["kubeplan"])
	}
}

// TestMakeImageBinaryAnswersVersion is `make image` end to end: the real kubeplan compiled
// static, packed, read back from the archive, extracted and run.
func TestMakeImageBinaryAnswersVersion(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image's binary is a Linux binary: it runs only on Linux")
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "kubeplan-image.tar")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	b := imagebuild.Build{ModuleDir: "../..", Package: "./cmd/bot", Version: "9.8.7-test", CABundleFile: ca, Out: out}
	if _, err := b.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image built in %s: %.1f MiB", time.Since(start).Round(time.Second), float64(st.Size())/(1<<20))

	img := readArchive(t, out, "9.8.7-test")
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User == "" || strings.HasPrefix(cfg.Config.User, "0") || strings.HasPrefix(cfg.Config.User, "root") {
		t.Errorf("image runs as %q, want a non-root user", cfg.Config.User)
	}
	_, contents := files(t, img)
	if _, ok := contents["bin/sh"]; ok {
		t.Error("image has a shell")
	}
	bin := filepath.Join(t.TempDir(), "kubeplan")
	if err := os.WriteFile(bin, contents["kubeplan"], 0o755); err != nil {
		t.Fatal(err)
	}
	// An empty environment: the binary needs no shared library, file or variable to start.
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = []string{}
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubeplan version from the image: %v\n%s", err, got)
	}
	if !strings.HasPrefix(string(got), "kubeplan 9.8.7-test ") {
		t.Errorf("kubeplan version = %q, want the version make image stamped", got)
	}
}
