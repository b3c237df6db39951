// Command kubeplan plans Kubernetes manifests against live clusters: from the terminal
// (kubeplan plan) and, as a service, for pull requests.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries an exit code through cobra without printing a second message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	root := &cobra.Command{
		Use:           "kubeplan",
		Short:         "Plan → review → apply for Kubernetes manifests",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newPlanCommand(), &cobra.Command{
		Use:   "version",
		Short: "Print the kubeplan version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "kubeplan", version) },
	})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "kubeplan:", err)
		return 1
	}
}
