// Command plancompare measures `kubeplan plan` side by side with `kubectl diff --server-side`
// and with the raw floor (the same server-side apply dry-runs issued in parallel, nothing
// else), on generated manifests against one local apiserver, in one run.
//
// Half of the objects exist (applied before, recorded in the project's ApplySet) and are
// changed; the other half are new. Peak RSS is measured for kubeplan at a larger size too.
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
	"sort"
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
	objects := fs.Int("objects", 1000, "objects in the timed comparison")
	rssObjects := fs.Int("rss-objects", 5000, "objects for the peak-RSS measurement (0 to skip)")
	runs := fs.Int("runs", 3, "runs per contender (the median is reported)")
	kubeplanBin := fs.String("kubeplan", "bin/kubeplan", "kubeplan binary")
	only := fs.String("only", "", `run one scenario only: "replan" (re-plan of unchanged objects with the cache)`)
	_ = fs.Parse(os.Args[1:])
	if err := run(context.Background(), *objects, *rssObjects, *runs, *kubeplanBin, *only); err != nil {
		fmt.Fprintln(os.Stderr, "plancompare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n, rssN, runs int, kubeplanBin, only string) error {
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
	fmt.Printf("kube-apiserver %s on loopback, kubectl %s, %d CPU cores\n\n", client.Version,
		strings.TrimPrefix(strings.Split(strings.TrimSpace(string(version)), "\n")[0], "Client Version: "), runtime.NumCPU())
	switch only {
	case "replan":
		return replan(ctx, kc, n, runs)
	case "":
	default:
		return fmt.Errorf("-only %q: the scenario to run alone is replan", only)
	}

	dir, err := prepare(ctx, client, "bench", n)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	kubeplanArgs := []string{"plan", dir, "--kubeconfig", kc.Kubeconfig, "-n", "bench", "--project", "bench", "-o", "json", "--repo-root", dir}
	results := []result{
		measure("kubeplan plan", runs, 2, kubeplanBin, kubeplanArgs...),
		measure("kubectl diff --server-side", runs, 1, kubectlBin, "--kubeconfig", kc.Kubeconfig, "diff", "--server-side", "--field-manager=kubeplan", "-n", "bench", "-f", dir),
		rawFloor(ctx, client, dir, runs),
	}
	fmt.Printf("%d objects (%d existing and changed, %d new), median of %d runs:\n\n", n, n/2, n-n/2, runs)
	fmt.Printf("  %-30s %10s %12s %10s\n", "contender", "wall", "peak RSS", "vs kubeplan")
	for _, r := range results {
		if r.err != nil {
			fmt.Printf("  %-30s failed: %v\n", r.name, r.err)
			continue
		}
		rss := "-"
		if r.rssKB > 0 {
			rss = fmt.Sprintf("%d MB", r.rssKB/1024)
		}
		fmt.Printf("  %-30s %10s %12s %9.1fx\n", r.name, r.wall.Round(time.Millisecond), rss, float64(r.wall)/float64(results[0].wall))
	}
	if results[0].err == nil && results[1].err == nil && results[2].err == nil {
		fmt.Printf("\n  kubeplan is %.1fx faster than kubectl diff (target ≥ 5x) and %.2fx the raw floor (target ≤ 2x)\n",
			float64(results[1].wall)/float64(results[0].wall), float64(results[0].wall)/float64(results[2].wall))
	}

	if rssN > 0 {
		bigDir, err := prepare(ctx, client, "bench-big", rssN)
		if err != nil {
			return err
		}
		defer os.RemoveAll(bigDir)
		big := measure("kubeplan plan", 1, 2, kubeplanBin, "plan", bigDir, "--kubeconfig", kc.Kubeconfig, "-n", "bench-big", "--project", "bench-big", "-o", "json", "--repo-root", bigDir)
		if big.err != nil {
			return big.err
		}
		fmt.Printf("\n%d objects: kubeplan plan %s, peak RSS %d MB (target < 250 MB)\n", rssN, big.wall.Round(time.Millisecond), big.rssKB/1024)
	}
	return replan(ctx, kc, n, runs)
}

type result struct {
	name  string
	wall  time.Duration
	rssKB int64
	err   error
}

// measure runs a command runs times; wantCode is its exit code when it finds changes.
func measure(name string, runs, wantCode int, bin string, args ...string) result {
	var walls []time.Duration
	var rss int64
	for i := 0; i < runs; i++ {
		cmd := exec.Command(bin, args...)
		cmd.Stdout = io.Discard
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != wantCode {
			return result{name: name, err: fmt.Errorf("exit %v (want %d): %v %s", cmd.ProcessState.ExitCode(), wantCode, err, firstLine(stderr.String()))}
		}
		walls = append(walls, wall)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = max(rss, ru.Maxrss)
		}
	}
	return result{name: name, wall: median(walls), rssKB: rss}
}

// rawFloor issues only the server-side apply dry-runs, in parallel with kubeplan's pool size.
func rawFloor(ctx context.Context, c *cluster.Client, dir string, runs int) result {
	name := "raw floor (dry-runs only)"
	objs, err := readObjects(dir)
	if err != nil {
		return result{name: name, err: err}
	}
	var walls []time.Duration
	for i := 0; i < runs; i++ {
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(planner.DefaultOptions().Workers)
		for _, o := range objs {
			g.Go(func() error {
				gvk := o.GroupVersionKind()
				m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					return err
				}
				_, err = c.Dynamic.Resource(m.Resource).Namespace(o.GetNamespace()).Apply(gctx, o.GetName(), o,
					metav1.ApplyOptions{FieldManager: cluster.FieldManager, DryRun: []string{metav1.DryRunAll}, Force: true})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return result{name: name, err: err}
		}
		walls = append(walls, time.Since(start))
	}
	return result{name: name, wall: median(walls)}
}

// prepare creates namespace ns, applies the existing half of n generated objects as members
// of project ns's ApplySet, and writes all n (the existing ones changed) to a directory.
func prepare(ctx context.Context, c *cluster.Client, ns string, n int) (string, error) {
	nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	if _, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Apply(ctx, ns, nsObj, metav1.ApplyOptions{FieldManager: "bench"}); err != nil {
		return "", err
	}
	set := inventory.ForProject(ns, ns)
	var existing []*unstructured.Unstructured
	for i := 0; i < n; i += 2 {
		o := generate(ns, i, 1)
		set.Label(o)
		existing = append(existing, o)
	}
	existing = append(existing, set.Parent([]schema.GroupKind{{Group: "apps", Kind: "Deployment"}, {Kind: "Service"}, {Kind: "ConfigMap"}}, nil, ""))
	if err := applyObjects(ctx, c, ns, existing); err != nil {
		return "", fmt.Errorf("apply existing objects: %w", err)
	}

	dir, err := os.MkdirTemp("", "kubeplan-bench-")
	if err != nil {
		return "", err
	}
	var file strings.Builder
	for i := 0; i < n; i++ {
		b, err := yaml.Marshal(generate(ns, i, 2).Object)
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

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// applyObjects server-side applies objs into ns as kubeplan would, 32 at a time: the state a
// scenario starts from.
func applyObjects(ctx context.Context, c *cluster.Client, ns string, objs []*unstructured.Unstructured) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, o := range objs {
		g.Go(func() error {
			gvk := o.GroupVersionKind()
			m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				return err
			}
			_, err = c.Dynamic.Resource(m.Resource).Namespace(ns).Apply(gctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: cluster.FieldManager, Force: true})
			return err
		})
	}
	return g.Wait()
}
