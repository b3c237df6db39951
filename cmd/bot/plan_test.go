package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kubeplan/kubeplan/internal/golden"
	"github.com/kubeplan/kubeplan/internal/kubetest"
)

var testCluster *kubetest.Cluster

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // this test binary, re-run as kubeplan itself (serve_test.go)
		return
	}
	os.Exit(kubetest.RunWithCluster(m, "test", &testCluster))
}

// kubeplan runs the CLI in-process and returns its exit code, stdout and stderr.
func kubeplan(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func kubectl(t *testing.T, stdin string, args ...string) {
	t.Helper()
	if _, err := testCluster.Kubectl(context.Background(), stdin, args...); err != nil {
		t.Fatal(err)
	}
}

const projects = "../../testdata/projects"

var seq atomic.Int64

// unique names a namespace for one run of one test, so that -count=2 works on the same cluster.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

var planHash = regexp.MustCompile(`"hash": "[0-9a-f]{64}"`)

// The reviewer's view of a change to the shop app, in every output format, pinned by golden
// files: an image bump and a scale-up, a new ConfigMap, a pruned ConfigMap, a Secret change.
func TestPlanOutputsGolden(t *testing.T) {
	// The namespace's name is in the golden files, so it is the same every run: applied (not
	// created) so that a second run finds it, and shop-v1 applied with --prune puts its objects
	// back as the first run found them.
	kubectl(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: golden}\n", "apply", "-f", "-")
	kubectl(t, "", "apply", "--server-side", "--field-manager=kubeplan", "--prune", "--applyset=configmap/kubeplan-shop",
		"-n", "golden", "-f", filepath.Join(projects, "shop-v1"))

	for _, format := range []string{"text", "markdown", "json"} {
		t.Run(format, func(t *testing.T) {
			code, out, errOut := kubeplan("plan", filepath.Join(projects, "shop-v2"), "--project", "shop", "-n", "golden",
				"--kubeconfig", testCluster.Kubeconfig, "--cluster", "test", "-o", format, "--color", "never", "--repo-root", projects)
			if code != 2 {
				t.Fatalf("exit code %d, want 2 (changes); stderr: %s", code, errOut)
			}
			if format == "json" {
				var decoded map[string]any
				if err := json.Unmarshal([]byte(out), &decoded); err != nil {
					t.Fatalf("json output does not parse: %v", err)
				}
			}
			if strings.Contains(out, "golden-old-password") || strings.Contains(out, "golden-new-password") {
				t.Fatal("a Secret value appears in the output")
			}
			if format == "json" {
				// The hash covers the live Secret's resourceVersion, which differs from run to
				// run; the planner's tests pin what moves it and what does not.
				out = planHash.ReplaceAllString(out, `"hash": "(varies)"`)
			}
			golden.Assert(t, "plan."+map[string]string{"text": "txt", "markdown": "md", "json": "json"}[format], out)
		})
	}

	// Once applied, the same manifests plan to nothing but the Secret: its values are not
	// compared with the live ones, so setting them is always a change (docs/plan.md) — unless
	// the operator asks for the comparison: then they plan to nothing, exit code 0.
	kubectl(t, "", "apply", "--server-side", "--field-manager=kubeplan", "--prune", "--applyset=configmap/kubeplan-shop",
		"-n", "golden", "-f", filepath.Join(projects, "shop-v2", "app.yaml"))
	args := []string{"plan", filepath.Join(projects, "shop-v2"), "--project", "shop", "-n", "golden",
		"--kubeconfig", testCluster.Kubeconfig, "--color", "never"}
	code, out, errOut := kubeplan(args...)
	if code != 2 {
		t.Fatalf("exit code %d after apply, want 2 (the Secret's values are set again)\n%s%s", code, out, errOut)
	}
	if !strings.HasPrefix(out, "test / shop — 0 to create, 1 to change, 0 to delete (2 unchanged)\n") ||
		!strings.Contains(out, "\n  ~ update    Secret golden/shop-db (secret keys set or removed: password, username)\n") {
		t.Fatalf("output after apply:\n%s", out)
	}
	code, out, errOut = kubeplan(append(args, "--compare-secret-values")...)
	if code != 0 {
		t.Fatalf("exit code %d after apply with --compare-secret-values, want 0\n%s%s", code, out, errOut)
	}
	if !strings.HasPrefix(out, "test / shop — 0 to create, 0 to change, 0 to delete (3 unchanged)\n") {
		t.Fatalf("output after apply with --compare-secret-values:\n%s", out)
	}
}

// Each failure a user can cause is one clear line on stderr and exit code 1.
func TestPlanErrorsAreOneClearLine(t *testing.T) {
	dir := t.TempDir()
	badKubeconfig := filepath.Join(dir, "garbage")
	if err := os.WriteFile(badKubeconfig, []byte("this: is: not: a kubeconfig"), 0o600); err != nil {
		t.Fatal(err)
	}
	down := filepath.Join(dir, "down")
	raw, err := os.ReadFile(testCluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(down, []byte(strings.Replace(string(raw), strings.TrimSuffix(testCluster.Config.Host, "/"), "https://127.0.0.1:1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(dir, "bad")
	if err := os.MkdirAll(badYAML, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badYAML, "x.yaml"), []byte("kind: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	shop := filepath.Join(projects, "shop-v2")
	badPolicy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(badPolicy, []byte("rules:\n- {name: broken, expr: 'object.spec.', message: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown cluster", []string{"plan", shop, "--kubeconfig", testCluster.Kubeconfig, "--cluster", "prod"}, `kubeplan: unknown cluster "prod" (known: test)`},
		{"unreachable apiserver", []string{"plan", shop, "--kubeconfig", down}, "kubeplan: cluster test: apiserver https://127.0.0.1:1 is unreachable: connection refused"},
		{"bad kubeconfig", []string{"plan", shop, "--kubeconfig", badKubeconfig}, "kubeplan: kubeconfig: "},
		{"missing kubeconfig", []string{"plan", shop, "--kubeconfig", filepath.Join(dir, "nope"), "--context", "x"}, "kubeplan: cluster x: kubeconfig " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"missing directory", []string{"plan", filepath.Join(dir, "missing"), "--kubeconfig", testCluster.Kubeconfig}, "no such file or directory"},
		{"bad yaml", []string{"plan", badYAML, "--kubeconfig", testCluster.Kubeconfig, "--repo-root", dir}, "kubeplan: render " + badYAML + ": bad/x.yaml: document 1: "},
		{"bad output", []string{"plan", shop, "-o", "xml"}, `kubeplan: unknown output format "xml"`},
		{"bad renderer", []string{"plan", shop, "--renderer", "jsonnet"}, `kubeplan: unknown renderer "jsonnet"`},
		{"bad policy rule", []string{"plan", shop, "--policy", badPolicy}, `policy rule "broken"`},
		{"missing policy", []string{"plan", shop, "--policy", filepath.Join(dir, "nope.yaml")}, "kubeplan: policy: open "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := kubeplan(c.args...)
			if code != 1 {
				t.Fatalf("exit code %d, want 1; stdout %q stderr %q", code, out, errOut)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.want) {
				t.Fatalf("stderr %q, want one line containing %q", errOut, c.want)
			}
		})
	}
}

func TestPlanWithFailingObjectExitsOne(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.yaml"), []byte("apiVersion: nothing.example.com/v1\nkind: Phantom\nmetadata: {name: p}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := kubeplan("plan", dir, "--kubeconfig", testCluster.Kubeconfig, "--color", "never")
	if code != 1 || !strings.Contains(out, "! fail      Phantom p") || !strings.Contains(out, "unknown kind Phantom") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

// Rule authors try their manifest rules locally: a deny finding is shown and exits 1, a warn
// finding is shown and keeps exit 2.
func TestPlanChecksAPolicyFile(t *testing.T) {
	dir := t.TempDir()
	deploy := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:latest", securityContext: {privileged: true}}]}
`
	if err := os.WriteFile(filepath.Join(dir, "deploy.yaml"), []byte(deploy), 0o644); err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{
		"deny.yaml": "rules:\n- name: no-privileged\n  kinds: [Deployment]\n  message: privileged containers are not allowed\n" +
			"  expr: object.spec.template.spec.containers.all(c, c.?securityContext.?privileged.orValue(false) == false)\n",
		"warn.yaml": "rules:\n- name: pin-tags\n  severity: warn\n  message: pin image tags\n" +
			"  expr: object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))\n",
	}
	for name, body := range rules {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ns := unique("policy-cli")
	kubectl(t, "", "create", "namespace", ns)
	args := []string{"plan", dir, "-n", ns, "--kubeconfig", testCluster.Kubeconfig, "--color", "never", "--repo-root", dir}
	code, out, _ := kubeplan(append(args, "--policy", filepath.Join(dir, "deny.yaml"))...)
	if code != 1 || !strings.Contains(out, `is denied by policy rule "no-privileged": privileged containers are not allowed`) {
		t.Fatalf("deny rule: exit %d, output:\n%s", code, out)
	}
	code, out, _ = kubeplan(append(args, "--policy", filepath.Join(dir, "warn.yaml"))...)
	if code != 2 || !strings.Contains(out, `policy rule "pin-tags" warns: pin image tags`) {
		t.Fatalf("warn rule: exit %d, output:\n%s", code, out)
	}
}

// A project whose objects make the manifest rules expensive stops at the plan's budget with
// one clear line, instead of evaluating every object under every rule: each evaluation
// below stays under the per-evaluation cost limit, together they are over the plan's budget.
func TestPlanStopsManifestRulesAtThePlansBudget(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("x", 100_000)
	for i := range 12 {
		cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big-%02d}\ndata: {big: %s}\n", i, big)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("cm-%02d.yaml", i)), []byte(cm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var scans []string
	for i := range 9 { // nine scans of 100 KB cost about 90,000, under the limit of 100,000
		scans = append(scans, fmt.Sprintf("!object.data.big.contains('needle-%d')", i))
	}
	var rules strings.Builder
	rules.WriteString("rules:\n")
	for i := range 10 { // 12 objects × 10 rules × 90,000: over the budget of 10,000,000
		fmt.Fprintf(&rules, "- {name: scan-%d, kinds: [ConfigMap], severity: warn, message: found, expr: %q}\n", i, strings.Join(scans, " && "))
	}
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := kubeplan("plan", dir, "-n", "default", "--kubeconfig", testCluster.Kubeconfig, "--policy", policyFile, "--color", "never")
	if code != 1 || out != "" {
		t.Fatalf("exit code %d, want 1 and no plan; stdout %q", code, out)
	}
	want := "kubeplan: manifest rules spent this plan's budget (its 10,000,000 units of CEL cost) and "
	if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "make the rules cheaper or the project smaller") {
		t.Fatalf("stderr %q, want one line starting %q", errOut, want)
	}
}
