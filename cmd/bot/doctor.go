package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/doctor"
)

func newDoctorCommand() *cobra.Command {
	var configFile, state string
	var o doctor.Options
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that kubeplan can do its work with this configuration",
		Long: `Check, with the configuration serve would use (--config and the same environment):
the forge credentials authenticate; the GitHub App installation or token has every permission
and event kubeplan needs on each allowed repository (GitLab: scope api, Developer on each
project); the webhook secrets are set; every registered cluster is reachable and kubeplan's
identity may do there what kubeplan does (asked per verb and kind); the state store opens and
takes writes. One line per check; a failure says what to do. Exit code 1 when a check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configFile, os.Getenv)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("state") {
				cfg.State = state
			}
			results := doctor.Run(cmd.Context(), cfg, o)
			failed := 0
			for _, r := range results {
				fmt.Fprintln(cmd.OutOrStdout(), r)
				if !r.OK {
					failed++
				}
			}
			if failed > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "kubeplan doctor: %d of %d checks failed\n", failed, len(results))
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "YAML configuration file (as for serve)")
	cmd.Flags().StringVar(&state, "state", config.Default().State, "state store: an SQLite file, or a postgres:// URL")
	cmd.Flags().StringSliceVarP(&o.Namespaces, "namespace", "n", nil, "a namespaced install: check cluster access in these namespaces instead of cluster-wide (repeatable)")
	cmd.Flags().StringSliceVar(&o.Kinds, "kind", nil, "check access to these kinds (resource.group, e.g. deployments.apps) instead of every kind (repeatable)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 15*time.Second, "how long each check may wait for an answer")
	return cmd
}
