package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kubeplan/kubeplan/drift"
	"github.com/kubeplan/kubeplan/driftwatch"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/repoconfig"
)

func newDriftCommand() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "drift DIR",
		Short: "Report where a cluster no longer matches DIR, and which field manager changed it",
		Long: `Render DIR as git has it and plan it against the live cluster, like plan: every object whose
live state differs from DIR is reported with the fields that drifted and who changed each
(field manager, operation, subresource and time, from managedFields); objects missing from the
cluster, and objects the project's inventory still holds that DIR no longer has, too.

Fields that controllers own by design (a HorizontalPodAutoscaler's replicas, injected CA
bundles) are shown and not counted. The annotation kubeplan.dev/drift: ignore | notify | revert
on an object, and the drift settings of the repository's .kubeplan.yaml, say what counts
(docs/drift.md). This command only reports: it changes nothing, and objects in revert mode are
not reverted by it.

Exit code: 0 no drift, 2 drift, 1 error (including objects that could not be checked).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runDrift(cmd, args[0], f) },
	}
	fl := cmd.Flags()
	addPlanFlags(fl, &f)
	fl.BoolVar(&f.compareSecrets, "compare-secret-values", true,
		"compare Secret values with the live ones, so an unchanged Secret is not drift (values are never printed)")
	return cmd
}

func runDrift(cmd *cobra.Command, dir string, f planFlags) error {
	ctx := cmd.Context()
	d, err := f.checkArgs(dir)
	if err != nil {
		return err
	}
	settings, err := driftSettings(cmd, &d, &f)
	if err != nil {
		return err
	}
	client, req, err := f.connectAndRender(ctx, d)
	if err != nil {
		return err
	}
	r, err := drift.Check(ctx, planner.New(planner.Options{Workers: f.workers}), client, req, settings)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	switch f.output {
	case "json":
		err = drift.JSON(out, r)
	case "markdown":
		err = drift.Markdown(out, r)
	default:
		err = drift.Text(out, r, drift.TextOptions{Color: useColor(f.color, out)})
	}
	if err != nil {
		return fmt.Errorf("write drift report: %w", err)
	}
	switch {
	case len(r.Failed) > 0:
		return exitError{1}
	case r.Drifted():
		return exitError{2}
	}
	return nil
}

// driftSettings reads the drift settings of the repository's .kubeplan.yaml, if it has one.
// The project whose dir is DIR (or whose name --project gives) also supplies the project name
// and namespace where the flags give none: they name the inventory the server applied with.
func driftSettings(cmd *cobra.Command, d *planDir, f *planFlags) (drift.Settings, error) {
	data, err := os.ReadFile(filepath.Join(d.root, repoconfig.FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return drift.Settings{}, nil
	}
	if err != nil {
		return drift.Settings{}, fmt.Errorf("%s: %w", repoconfig.FileName, err)
	}
	cfg, err := repoconfig.Parse(data)
	if err != nil {
		return drift.Settings{}, err
	}
	var project repoconfig.Project
	for _, p := range cfg.Projects {
		if f.project != "" && p.Name == f.project || f.project == "" && p.Dir == d.rel {
			project = p
			break
		}
	}
	if project.Name != "" && f.project == "" {
		d.project = project.Name
	}
	if project.Namespace != "" && !cmd.Flags().Changed("namespace") {
		f.namespace = project.Namespace
	}
	return driftwatch.Settings(cfg, project), nil
}
