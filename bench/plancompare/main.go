// Command plancompare measures `kubeplan plan` side by side with `kubectl diff --server-side`
// and with the raw floor (one LIST per kind plus one server-side apply dry-run per object,
// in parallel, nothing else), on generated manifests against one local apiserver, in one run.
//
// The contenders run interleaved, several times each, and each is printed as min / median /
// max with the machine's load average before and after: the machine is shared, and one run
// of each would measure the neighbours as much as the contenders. Two scenarios at each size:
// steady (objects applied by kubeplan before) and kubectl-migrated (applied by kubectl before,
// so the plan takes the fields over and adds the inventory label to every object). Peak RSS
// of kubeplan is measured over several runs at a larger size.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/planner"
)

func main() {
	fs := flag.NewFlagSet("plancompare", flag.ExitOnError)
	sizes := fs.String("objects", "100,1000", "object counts of the timed comparison, comma-separated")
	runs := fs.Int("runs", 5, "interleaved runs per contender in the timed comparison")
	rssObjects := fs.Int("rss-objects", 5000, "objects for the peak-RSS measurement (0 to skip)")
	rssRuns := fs.Int("rss-runs", 3, "runs of kubeplan (and the raw floor) at -rss-objects; kubectl diff runs once there")
	kubeplanBin := fs.String("kubeplan", "bin/kubeplan", "kubeplan binary; several comma-separated run interleaved as contenders of their own (before and after a change)")
	only := fs.String("only", "", `run one scenario only: "replan" (re-plan of unchanged objects with the cache) or "rss" (peak RSS at -rss-objects, without kubectl diff)`)
	_ = fs.Parse(os.Args[1:])
	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			fmt.Fprintf(os.Stderr, "plancompare: -objects %q: want counts of at least 2, comma-separated\n", *sizes)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	if *runs < 1 || *rssRuns < 1 {
		fmt.Fprintln(os.Stderr, "plancompare: -runs and -rss-runs must be at least 1")
		os.Exit(2)
	}
	if err := run(context.Background(), ns, *runs, *rssObjects, *rssRuns, *kubeplanBin, *only); err != nil {
		fmt.Fprintln(os.Stderr, "plancompare:", err)
		os.Exit(1)
	}
}

// scenario is the state the cluster is in before the plan.
type scenario string

const (
	// steady: half of the objects were applied by kubeplan before (labelled, in the ApplySet)
	// and are changed; the other half are new.
	steady scenario = "steady"
	// migrated: every object was applied by kubectl before (kubectl's field manager owns the
	// fields, no inventory label); half are changed, and the plan adds the label to all.
	migrated scenario = "kubectl-migrated"
)

func run(ctx context.Context, sizes []int, runs, rssN, rssRuns int, kubeplanBin, only string) error {
	assets, err := kubetest.Assets()
	if err != nil {
		return err
	}
	kc, err := kubetest.Start("bench")
	if err != nil {
		return err
	}
	defer kc.Stop()
	client, err := kc.Client(ctx)
	if err != nil {
		return err
	}
	kubectlBin := filepath.Join(assets, "kubectl")
	version, _ := exec.Command(kubectlBin, "version", "--client").Output()
	fmt.Printf("kube-apiserver %s on loopback, kubectl %s, %d CPU cores\n", client.Version,
		strings.TrimPrefix(strings.Split(strings.TrimSpace(string(version)), "\n")[0], "Client Version: "), runtime.NumCPU())
	replanN := sizes[len(sizes)-1]
	switch only {
	case "replan":
		return replan(ctx, kc, replanN, runs)
	case "rss":
		if rssN < 2 {
			return fmt.Errorf("-only rss: -rss-objects must be at least 2")
		}
		b := bench{kc: kc, client: client, kubeplan: strings.Split(kubeplanBin, ","), kubectl: kubectlBin}
		return b.compare(ctx, steady, rssN, rssRuns, 0)
	case "":
	default:
		return fmt.Errorf("-only %q: the scenarios to run alone are replan and rss", only)
	}

	b := bench{kc: kc, client: client, kubeplan: strings.Split(kubeplanBin, ","), kubectl: kubectlBin}
	for _, n := range sizes {
		for _, sc := range []scenario{steady, migrated} {
			if err := b.compare(ctx, sc, n, runs, runs); err != nil {
				return err
			}
		}
	}
	if rssN > 0 {
		if err := b.compare(ctx, steady, rssN, rssRuns, 1); err != nil {
			return err
		}
	}
	return replan(ctx, kc, replanN, runs)
}

type bench struct {
	kc       *kubetest.Cluster
	client   *cluster.Client
	kubeplan []string // binaries; more than one only to compare builds
	kubectl  string
}

// contender is one way of computing the plan; run times one run of it.
type contender struct {
	name string
	runs int
	run  func(context.Context) (wall time.Duration, rssKB int64, err error)
}

type result struct {
	walls []time.Duration
	rssKB []int64
	err   error
}

// compare prepares scenario sc with n objects and times the contenders interleaved: each
// round runs every contender once, the order rotated by one per round, so load that comes
// and goes on the shared machine falls on all of them alike. kubectl diff runs kubectlRuns
// times (the first rounds), the others runs times.
func (b bench) compare(ctx context.Context, sc scenario, n, runs, kubectlRuns int) error {
	ns := fmt.Sprintf("bench-%s-%d", sc, n)
	dir, err := prepare(ctx, b.client, ns, n, sc)
	if err != nil {
		return fmt.Errorf("%s, %d objects: %w", sc, n, err)
	}
	defer os.RemoveAll(dir)
	objs, err := readObjects(dir)
	if err != nil {
		return err
	}
	var contenders []contender
	for _, bin := range b.kubeplan {
		name := "kubeplan plan"
		if len(b.kubeplan) > 1 {
			name += " " + filepath.Base(bin)
		}
		contenders = append(contenders, contender{name, runs, command(2, bin, "plan", dir, "--kubeconfig", b.kc.Kubeconfig, "-n", ns, "--project", ns, "-o", "json", "--repo-root", dir)})
	}
	contenders = append(contenders,
		contender{"kubectl diff --server-side", kubectlRuns, command(1, b.kubectl, "--kubeconfig", b.kc.Kubeconfig, "diff", "--server-side", "--force-conflicts", "--field-manager=kubeplan", "-n", ns, "-f", dir)},
		contender{"raw floor (LISTs + dry-runs)", runs, func(ctx context.Context) (time.Duration, int64, error) { return rawFloor(ctx, b.client, ns, objs) }},
	)
	kubectlAt := len(b.kubeplan)
	describe := map[scenario]string{
		steady:   fmt.Sprintf("%d applied by kubeplan before and changed, %d new", n/2, n-n/2),
		migrated: fmt.Sprintf("all applied by kubectl before, %d of them changed; the plan adds the inventory label to all", (n+1)/2),
	}[sc]
	fmt.Printf("\n%s, %d objects (%s); load average before %s\n", sc, n, describe, loadAverage())
	results := make([]result, len(contenders))
	rounds := max(runs, kubectlRuns)
	for round := 0; round < rounds; round++ {
		for k := range contenders {
			i := (k + round) % len(contenders)
			c, r := contenders[i], &results[i]
			if round >= c.runs || r.err != nil {
				continue
			}
			wall, rss, err := c.run(ctx)
			if err != nil {
				r.err = err
				continue
			}
			r.walls = append(r.walls, wall)
			if rss > 0 {
				r.rssKB = append(r.rssKB, rss)
			}
		}
	}
	fmt.Printf("  %-30s %4s %29s %21s %10s\n", "contender", "runs", "wall min / median / max", "peak RSS MB", "median vs")
	fmt.Printf("  %-30s %4s %29s %21s %10s\n", "", "", "", "min / median / max", "kubeplan")
	for i, c := range contenders {
		r := results[i]
		if c.runs == 0 {
			continue
		}
		if r.err != nil {
			fmt.Printf("  %-30s failed: %v\n", c.name, r.err)
			continue
		}
		w := spread(r.walls)
		rss := "-"
		if len(r.rssKB) > 0 {
			s := spread(r.rssKB)
			rss = fmt.Sprintf("%d / %d / %d", s.min/1024, s.median/1024, s.max/1024)
		}
		vs := "-"
		if results[0].err == nil {
			vs = fmt.Sprintf("%.2fx", float64(w.median)/float64(spread(results[0].walls).median))
		}
		fmt.Printf("  %-30s %4d %29s %21s %10s\n", c.name, len(r.walls),
			fmt.Sprintf("%s / %s / %s", seconds(w.min), seconds(w.median), seconds(w.max)), rss, vs)
	}
	if kubectlRuns > 0 && results[0].err == nil && results[kubectlAt].err == nil && results[kubectlAt+1].err == nil {
		kp := spread(results[0].walls).median
		fmt.Printf("  medians: kubeplan is %.1fx faster than kubectl diff (target ≥ 5x) and %.2fx the raw floor (target ≤ 2x)\n",
			float64(spread(results[kubectlAt].walls).median)/float64(kp), float64(kp)/float64(spread(results[kubectlAt+1].walls).median))
	}
	fmt.Printf("  load average after %s\n", loadAverage())
	return nil
}

// command times one run of a binary; wantCode is its exit code when it finds changes.
func command(wantCode int, bin string, args ...string) func(context.Context) (time.Duration, int64, error) {
	return func(ctx context.Context) (time.Duration, int64, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout = io.Discard
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != wantCode {
			return 0, 0, fmt.Errorf("%s: exit %v (want %d): %v %s", filepath.Base(bin), cmd.ProcessState.ExitCode(), wantCode, err, firstLine(stderr.String()))
		}
		var rss int64
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
		return wall, rss, nil
	}
}

// rawFloor is the least a plan must ask of the apiserver: one LIST per kind in the namespace
// (the live state) and one forced server-side apply dry-run per object, all in parallel with
// kubeplan's pool size, nothing else (no YAML, no diff, no inventory).
func rawFloor(ctx context.Context, c *cluster.Client, ns string, objs []*unstructured.Unstructured) (time.Duration, int64, error) {
	kinds := map[schema.GroupVersionKind]bool{}
	for _, o := range objs {
		kinds[o.GroupVersionKind()] = true
	}
	resource := func(gvk schema.GroupVersionKind) (schema.GroupVersionResource, error) {
		m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return schema.GroupVersionResource{}, err
		}
		return m.Resource, nil
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(planner.DefaultOptions().Workers)
	for gvk := range kinds {
		g.Go(func() error {
			r, err := resource(gvk)
			if err != nil {
				return err
			}
			_, err = c.Dynamic.Resource(r).Namespace(ns).List(gctx, metav1.ListOptions{})
			return err
		})
	}
	for _, o := range objs {
		g.Go(func() error {
			r, err := resource(o.GroupVersionKind())
			if err != nil {
				return err
			}
			_, err = c.Dynamic.Resource(r).Namespace(ns).Apply(gctx, o.GetName(), o,
				metav1.ApplyOptions{FieldManager: cluster.FieldManager, DryRun: []string{metav1.DryRunAll}, Force: true})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, fmt.Errorf("raw floor: %w", err)
	}
	return time.Since(start), 0, nil
}

// prepare creates namespace ns with the objects scenario sc starts from, and writes the n
// objects the plan wants to a directory.
func prepare(ctx context.Context, c *cluster.Client, ns string, n int, sc scenario) (string, error) {
	nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	if _, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Apply(ctx, ns, nsObj, metav1.ApplyOptions{FieldManager: "bench"}); err != nil {
		return "", err
	}
	var existing []*unstructured.Unstructured
	manager := "kubectl"
	revision := func(i int) int { return 1 + (i+1)%2 } // even objects changed
	switch sc {
	case steady:
		manager = cluster.FieldManager
		revision = func(int) int { return 2 }
		set := inventory.ForProject(ns, ns)
		for i := 0; i < n; i += 2 {
			o := generate(ns, i, 1)
			set.Label(o)
			existing = append(existing, o)
		}
		existing = append(existing, set.Parent([]schema.GroupKind{{Group: "apps", Kind: "Deployment"}, {Kind: "Service"}, {Kind: "ConfigMap"}}, nil, ""))
	case migrated:
		for i := 0; i < n; i++ {
			existing = append(existing, generate(ns, i, 1))
		}
	}
	if err := applyObjects(ctx, c, ns, manager, existing); err != nil {
		return "", fmt.Errorf("apply existing objects: %w", err)
	}

	dir, err := os.MkdirTemp("", "kubeplan-bench-")
	if err != nil {
		return "", err
	}
	var file strings.Builder
	for i := 0; i < n; i++ {
		b, err := yaml.Marshal(generate(ns, i, revision(i)).Object)
		if err != nil {
			return "", err
		}
		file.WriteString("---\n")
		file.Write(b)
		if (i+1)%100 == 0 || i == n-1 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("objects-%05d.yaml", i/100)), []byte(file.String()), 0o644); err != nil {
				return "", err
			}
			file.Reset()
		}
	}
	return dir, nil
}

// generate makes object i (a Deployment, Service or ConfigMap) at a revision.
func generate(ns string, i, rev int) *unstructured.Unstructured {
	name := fmt.Sprintf("obj-%05d", i)
	var obj map[string]any
	switch i % 3 {
	case 0:
		obj = map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": name, "namespace": ns},
			"spec": map[string]any{"replicas": int64(rev), "selector": map[string]any{"matchLabels": map[string]any{"app": name}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": fmt.Sprintf("registry.example.com/app:%d.0", rev),
						"env": []any{map[string]any{"name": "REVISION", "value": fmt.Sprint(rev)}}}}}}}}
	case 1:
		obj = map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"rev": fmt.Sprint(rev)}},
			"spec": map[string]any{"selector": map[string]any{"app": name}, "ports": []any{map[string]any{"port": int64(80), "targetPort": int64(8000 + rev)}}}}
	default:
		obj = map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name, "namespace": ns},
			"data": map[string]any{"revision": fmt.Sprint(rev), "settings.yaml": strings.Repeat(fmt.Sprintf("key%d: value\n", rev), 10)}}
	}
	return &unstructured.Unstructured{Object: obj}
}

func readObjects(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, doc := range strings.Split(string(data), "---\n") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				return nil, err
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// stats is the least, the median and the greatest of a set of samples.
type stats[T time.Duration | int64] struct{ min, median, max T }

func spread[T time.Duration | int64](samples []T) stats[T] {
	s := slices.Clone(samples)
	slices.Sort(s)
	return stats[T]{s[0], s[len(s)/2], s[len(s)-1]}
}

func seconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// applyObjects server-side applies objs into ns with field manager manager (cluster.FieldManager
// as kubeplan would), 32 at a time: the state a scenario starts from.
func applyObjects(ctx context.Context, c *cluster.Client, ns, manager string, objs []*unstructured.Unstructured) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, o := range objs {
		g.Go(func() error {
			gvk := o.GroupVersionKind()
			m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				return err
			}
			_, err = c.Dynamic.Resource(m.Resource).Namespace(ns).Apply(gctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: manager, Force: true})
			return err
		})
	}
	return g.Wait()
}
