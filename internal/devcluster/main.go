// Command devcluster runs local Kubernetes control planes for the demo and benchmarks until
// interrupted, and writes one kubeconfig with a context per cluster.
//
//	go run ./internal/devcluster -clusters local,prod -kubeconfig /tmp/kubeconfig
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubeplan/kubeplan/internal/kubetest"
)

func main() {
	// A flag set of our own: controller-runtime registers -kubeconfig on the global one.
	fs := flag.NewFlagSet("devcluster", flag.ExitOnError)
	names := fs.String("clusters", "local", "comma-separated cluster names, one control plane each")
	kubeconfig := fs.String("kubeconfig", "", "write a kubeconfig with one context per cluster here (required)")
	_ = fs.Parse(os.Args[1:])
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "devcluster: -kubeconfig is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(*names, ","), *kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, names []string, kubeconfig string) error {
	var configs []*clientcmdapi.Config
	for _, name := range names {
		c, err := kubetest.Start(name)
		if err != nil {
			return err
		}
		defer c.Stop()
		cfg, err := c.KubeconfigAPI()
		if err != nil {
			return err
		}
		configs = append(configs, cfg)
		slog.Info("control plane started", "cluster", name, "host", c.Config.Host)
	}
	// Written last and renamed into place: its existence means every cluster is up.
	tmp := kubeconfig + ".tmp"
	if err := kubetest.WriteKubeconfig(tmp, configs...); err != nil {
		return err
	}
	if err := os.Rename(tmp, kubeconfig); err != nil {
		return err
	}
	defer os.Remove(kubeconfig)
	<-ctx.Done()
	slog.Info("stopping control planes")
	return nil
}
