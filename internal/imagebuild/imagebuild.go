// Package imagebuild builds kubeplan's container image without a container runtime: a static
// binary, a passwd entry for an unprivileged user, CA certificates and nothing else (no shell,
// no package manager), written as an OCI image layout in a tar file (an "OCI archive") that
// crane, skopeo, oras or `docker load` push or load. No Docker daemon is needed or used.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed facts; the Helm chart's securityContext uses the same ids.
const (
	// UID and GID of the unprivileged user the image runs as (distroless's "nonroot").
	UID = 65532
	GID = 65532
	// BinaryPath is where the kubeplan binary lives in the image; it is the entrypoint.
	BinaryPath = "/kubeplan"
	// StateDir is the working directory, where the chart mounts the state volume.
	StateDir = "/var/lib/kubeplan"
	// CABundlePath is where Go's crypto/x509 looks first on Linux.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	// Port is the HTTP port `kubeplan serve` listens on by default.
	Port = 8080
)

// Options describe one image.
type Options struct {
	// Binary is the static Linux kubeplan binary to put in the image.
	Binary []byte
	// CABundle is a PEM bundle of trusted CA certificates (GitHub, GitLab and apiservers are
	// reached over TLS); empty leaves it out.
	CABundle []byte
	// Version labels the image and names it in the layout (org.opencontainers.image.ref.name).
	Version string
	// Arch is the GOARCH the binary was built for.
	Arch string
	// Created is the image's creation time; zero means the Unix epoch, so that the same
	// inputs give the same digest.
	Created time.Time
}

// Image assembles the image: one layer, a config that runs the binary as UID:GID.
func Image(opts Options) (v1.Image, error) {
	if len(opts.Binary) == 0 {
		return nil, fmt.Errorf("image: no binary")
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	layerTar, err := rootFS(opts, created)
	if err != nil {
		return nil, err
	}
	// Compressed once here: given uncompressed bytes, the layer would gzip them again for its
	// digest, for the manifest and for the archive.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(layerTar); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", opts.Arch
	cfg.Created = v1.Time{Time: created}
	cfg.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", UID, GID),
		Entrypoint:   []string{BinaryPath},
		Cmd:          []string{"serve"},
		WorkingDir:   StateDir,
		Env:          []string{"SSL_CERT_FILE=" + CABundlePath},
		ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", Port): {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":   "kubeplan",
			"org.opencontainers.image.version": opts.Version,
			"org.opencontainers.image.source":  "https://github.com/kubeplan/kubeplan",
		},
	}
	cfg.History = []v1.History{{Created: v1.Time{Time: created}, CreatedBy: "kubeplan internal/imagebuild", Comment: "static kubeplan binary, passwd entry, CA certificates"}}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return img, nil
}

// rootFS is the image's only layer, as an uncompressed tar with fixed times and owners.
func rootFS(opts Options, mtime time.Time) ([]byte, error) {
	type entry struct {
		name     string
		mode     int64
		uid, gid int
		data     []byte
		dir      bool
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: UID, gid: GID, dir: true},
		// /tmp is writable for runs without the chart (which mounts an emptyDir there).
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "var/", mode: 0o755, dir: true},
		{name: "var/lib/", mode: 0o755, dir: true},
		{name: StateDir[1:] + "/", mode: 0o700, uid: UID, gid: GID, dir: true},
		{name: BinaryPath[1:], mode: 0o555, data: opts.Binary},
	}
	if len(opts.CABundle) > 0 {
		entries = append(entries,
			entry{name: "etc/ssl/", mode: 0o755, dir: true},
			entry{name: "etc/ssl/certs/", mode: 0o755, dir: true},
			entry{name: CABundlePath[1:], mode: 0o644, data: opts.CABundle})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: mtime, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("image layer %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("image layer %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteArchive writes img as an OCI image layout packed in a tar file at path (what
// `skopeo copy oci-archive:PATH docker://REGISTRY/kubeplan:TAG` and `docker load` read), the
// image named refName in the layout's index.
func WriteArchive(path string, img v1.Image, refName string) error {
	dir, err := os.MkdirTemp("", "kubeplan-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	err = lp.AppendImage(img,
		layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": refName}),
		layout.WithPlatform(v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture}))
	if err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := tarDir(f, dir); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("pack %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// tarDir packs dir's files in name order with fixed times, so the archive is reproducible.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if d.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			return tw.WriteHeader(h)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// BuildBinary compiles kubeplan (the main package pkg, e.g. "./cmd/bot", in module directory
// moduleDir) as a static Linux binary for arch, stamped with version, into out.
func BuildBinary(ctx context.Context, moduleDir, pkg, version, arch, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+version, "-o", out, pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, output)
	}
	return nil
}

// Build says what `make image` builds.
type Build struct {
	// ModuleDir is kubeplan's module root; Package the main package in it ("./cmd/bot").
	ModuleDir, Package string
	Version            string
	Arch               string
	// CABundleFile is the PEM bundle copied into the image (the build machine's, by default).
	CABundleFile string
	// Out is the OCI archive to write.
	Out string
}

// Run compiles the binary, assembles the image and writes the archive; it returns the image.
func (b Build) Run(ctx context.Context) (v1.Image, error) {
	if b.Arch == "" {
		b.Arch = runtime.GOARCH
	}
	ca, err := os.ReadFile(b.CABundleFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificates for the image (kubeplan reaches forges and apiservers over TLS): %w", err)
	}
	dir, err := os.MkdirTemp("", "kubeplan-image-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "kubeplan")
	if err := BuildBinary(ctx, b.ModuleDir, b.Package, b.Version, b.Arch, bin); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	img, err := Image(Options{Binary: data, CABundle: ca, Version: b.Version, Arch: b.Arch})
	if err != nil {
		return nil, err
	}
	if err := WriteArchive(b.Out, img, b.Version); err != nil {
		return nil, err
	}
	return img, nil
}
