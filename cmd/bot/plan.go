package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/render"
	"github.com/kubeplan/kubeplan/report"
)

type planFlags struct {
	cluster, kubeconfig, context string
	output, color                string
	project, namespace, renderer string
	release, repoRoot            string
	policyFile                   string
	values                       []string
	workers                      int
	showUnchanged                bool
	compareSecrets               bool
}

func newPlanCommand() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan DIR",
		Short: "Render DIR and print what applying it would change on a cluster",
		Long: `Render DIR (plain YAML, Kustomize or a Helm chart) and compare it with the live cluster
through a server-side apply dry-run. Nothing is changed on the cluster.

With --policy FILE, the manifest rules of a policy section (the server's policy: on its own)
are checked on every change, as kubeplan does in pull requests.

Exit code: 0 no changes, 2 changes, 1 error (including objects that would fail to apply and
changes a deny rule stops).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runPlan(cmd, args[0], f) },
	}
	fl := cmd.Flags()
	addPlanFlags(fl, &f)
	fl.BoolVar(&f.showUnchanged, "show-unchanged", false, "list unchanged objects too")
	fl.BoolVar(&f.compareSecrets, "compare-secret-values", false,
		"say whether the Secret values set equal the live ones (never for output that people who cannot read those Secrets will see)")
	fl.StringVar(&f.policyFile, "policy", "", "YAML policy section whose manifest rules (CEL) every change is checked against")
	return cmd
}

// addPlanFlags registers the flags every command that plans a directory shares (plan, drift).
func addPlanFlags(fl *pflag.FlagSet, f *planFlags) {
	fl.StringVar(&f.cluster, "cluster", "", "cluster name (a context of the kubeconfig); default: the current context")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&f.context, "context", "", "kubeconfig context to use")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text, markdown or json")
	fl.StringVar(&f.color, "color", "auto", "colour text output: auto, always or never")
	fl.StringVarP(&f.project, "project", "p", "", "project name (default: the directory's name)")
	fl.StringVarP(&f.namespace, "namespace", "n", "default", "namespace for objects that name none")
	fl.StringVar(&f.renderer, "renderer", "auto", "auto, yaml, kustomize or helm")
	fl.StringVar(&f.release, "release", "", "Helm release name (default: the directory's name)")
	fl.StringSliceVarP(&f.values, "values", "f", nil, "Helm values file, relative to DIR (repeatable)")
	fl.StringVar(&f.repoRoot, "repo-root", "", "nothing outside this directory is read (default: the git checkout holding DIR, else DIR)")
	fl.IntVar(&f.workers, "workers", planner.DefaultOptions().Workers, "requests in flight against the cluster")
}

// planDir is a directory to plan, checked before the cluster is asked anything.
type planDir struct {
	dir, root, rel, project string
	renderer                render.Renderer
}

// checkArgs checks the flags that need no cluster and locates DIR in its repository.
func (f planFlags) checkArgs(dir string) (planDir, error) {
	switch f.output {
	case "text", "markdown", "json":
	default:
		return planDir{}, fmt.Errorf("unknown output format %q (want text, markdown or json)", f.output)
	}
	rend, err := render.ParseRenderer(f.renderer)
	if err != nil {
		return planDir{}, err
	}
	root, rel, err := repoPaths(dir, f.repoRoot)
	if err != nil {
		return planDir{}, err
	}
	project := f.project
	if project == "" {
		project = filepath.Base(filepath.Join(root, rel))
	}
	return planDir{dir: dir, root: root, rel: rel, project: project, renderer: rend}, nil
}

// connectAndRender connects to the cluster and renders the directory into a plan request.
func (f planFlags) connectAndRender(ctx context.Context, d planDir) (*cluster.Client, planner.Request, error) {
	target, err := resolveTarget(f)
	if err != nil {
		return nil, planner.Request{}, err
	}
	client, err := cluster.Connect(ctx, target, cluster.DefaultTuning())
	if err != nil {
		return nil, planner.Request{}, err
	}
	rendered, err := render.Render(ctx, d.root, d.rel, render.Options{
		Renderer: d.renderer, Namespace: f.namespace, HelmRelease: f.release, ValuesFiles: f.values, KubeVersion: client.Version,
	})
	if err != nil {
		return nil, planner.Request{}, fmt.Errorf("render %s: %w", d.dir, err)
	}
	return client, planner.Request{Project: d.project, Objects: rendered.Objects, Notes: rendered.Notes,
		Renderer: string(rendered.Renderer), Namespace: f.namespace, CompareSecretValues: f.compareSecrets}, nil
}

func runPlan(cmd *cobra.Command, dir string, f planFlags) error {
	ctx := cmd.Context()
	d, err := f.checkArgs(dir)
	if err != nil {
		return err
	}
	rules, err := loadPolicy(f.policyFile)
	if err != nil {
		return err
	}
	client, req, err := f.connectAndRender(ctx, d)
	if err != nil {
		return err
	}
	project := d.project
	budget := policy.NewBudget()
	if rules != nil {
		req.Inspect = func(ch *plan.Change, planned, live *unstructured.Unstructured) {
			ch.Findings = rules.Check(ctx, budget, policy.Target{Project: project, Cluster: client.Name}, *ch, policy.Content(planned), policy.Content(live), policy.PRInfo{})
		}
	}
	p, err := planner.New(planner.Options{Workers: f.workers}).Plan(ctx, client, req)
	if err != nil {
		return err
	}
	if err := budget.Err(); err != nil {
		return err
	}

	out := cmd.OutOrStdout()
	switch f.output {
	case "json":
		err = report.JSON(out, p)
	case "markdown":
		err = report.Markdown(out, p)
	default:
		err = report.Text(out, p, report.TextOptions{Color: useColor(f.color, out), ShowUnchanged: f.showUnchanged})
	}
	if err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return exitFor(p)
}

// loadPolicy compiles the manifest rules of a policy file; nil without one.
func loadPolicy(path string) (*policy.Policy, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	cfg, err := policy.ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pol, err := policy.Compile(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pol, nil
}

// exitFor maps a plan to the exit code: 1 when an object would fail or a deny rule stops a
// change, 2 on changes, else 0.
func exitFor(p *plan.Plan) error {
	c := p.Counts()
	switch {
	case c.Fail > 0 || len(p.Denials()) > 0:
		return exitError{1}
	case c.HasChanges():
		return exitError{2}
	}
	return nil
}

// resolveTarget picks the cluster from --kubeconfig/--context or --cluster (a context name).
func resolveTarget(f planFlags) (cluster.Target, error) {
	if f.cluster != "" && f.context != "" {
		return cluster.Target{}, fmt.Errorf("give --cluster or --context, not both")
	}
	if f.context != "" {
		return cluster.Target{Name: f.context, Kubeconfig: f.kubeconfig, Context: f.context}, nil
	}
	reg, err := cluster.FromKubeconfig(f.kubeconfig)
	if err != nil {
		return cluster.Target{}, err
	}
	return reg.Lookup(f.cluster)
}

// repoPaths splits DIR into the repository root (the read boundary) and DIR relative to it.
func repoPaths(dir, repoRoot string) (string, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	if st, err := os.Stat(abs); err != nil {
		return "", "", fmt.Errorf("%s: %w", dir, err)
	} else if !st.IsDir() {
		return "", "", fmt.Errorf("%s is not a directory", dir)
	}
	if repoRoot == "" {
		repoRoot = abs
		for d := abs; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
				repoRoot = d
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return "", "", err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || len(rel) > 2 && rel[:3] == ".."+string(filepath.Separator) {
		return "", "", fmt.Errorf("%s is outside the repository root %s", dir, repoRoot)
	}
	return root, filepath.ToSlash(rel), nil
}

func useColor(mode string, out any) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := out.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
