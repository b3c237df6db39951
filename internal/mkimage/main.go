// Command mkimage is `make image`: it builds kubeplan's container image as an OCI archive
// without a container runtime (see package imagebuild).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/kubeplan/kubeplan/internal/imagebuild"
)

func main() {
	b := imagebuild.Build{ModuleDir: ".", Package: "./cmd/bot"}
	flag.StringVar(&b.Version, "version", "dev", "version stamped into the binary and the image's name in the layout")
	flag.StringVar(&b.Arch, "arch", "", "GOARCH of the image (default: this machine's)")
	flag.StringVar(&b.CABundleFile, "ca-bundle", imagebuild.CABundlePath, "PEM CA bundle copied into the image")
	flag.StringVar(&b.Out, "o", "bin/kubeplan-image.tar", "OCI archive to write")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	img, err := b.Run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	digest, err := img.Digest()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	st, err := os.Stat(b.Out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: kubeplan %s, %s, %.1f MiB\n", b.Out, b.Version, digest, float64(st.Size())/(1<<20))
}
