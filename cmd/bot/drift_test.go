package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/internal/golden"
)

// writeDir writes files into a new directory and returns it.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func driftDeployment(name, annotations string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, annotations: {%s}}
spec:
  replicas: 2
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec: {containers: [{name: app, image: "nginx:1.27"}]}
`, name, annotations, name, name)
}

// applyAsKubeplan applies dir as kubeplan does (server-side, field manager kubeplan, the
// project's ApplySet, prune), taking back whatever an earlier run drifted.
func applyAsKubeplan(t *testing.T, project, ns, dir string) {
	t.Helper()
	kubectl(t, "", "apply", "--server-side", "--field-manager=kubeplan", "--force-conflicts", "--prune",
		"--applyset=configmap/kubeplan-"+project, "-n", ns, "-f", dir)
}

var driftTime = regexp.MustCompile(` at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`)

// What an operator sees when a cluster drifted: a replica count changed by hand, an HPA's
// replicas (not counted), an object deleted out of band, one git no longer has, one silenced
// by its annotation; in every output format, the text and Markdown pinned by golden files.
func TestDriftOutputsGolden(t *testing.T) {
	const ns, project = "drift-golden", "golden-drift"
	kubectl(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: drift-golden}\n", "apply", "-f", "-")
	settings := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n"
	objects := map[string]string{
		"web.yaml":      driftDeployment("web", "kubeplan.dev/drift: revert"),
		"api.yaml":      driftDeployment("api", ""),
		"batch.yaml":    driftDeployment("batch", "kubeplan.dev/drift: ignore"),
		"settings.yaml": settings,
	}
	git := writeDir(t, objects)
	objects["old.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old}\ndata: {kept: \"yes\"}\n"
	before := writeDir(t, objects)
	applyAsKubeplan(t, project, ns, before)

	kubectl(t, "", "patch", "deployment", "web", "-n", ns, "--field-manager=kubectl-edit", "-p", `{"spec":{"replicas":5}}`)
	kubectl(t, "", "patch", "deployment", "batch", "-n", ns, "--field-manager=kubectl-edit", "-p", `{"spec":{"replicas":5}}`)
	kubectl(t, "", "patch", "deployment", "api", "-n", ns, "--subresource=scale", "--field-manager=kube-controller-manager", "-p", `{"spec":{"replicas":4}}`)
	kubectl(t, "", "delete", "configmap", "settings", "-n", ns)

	args := []string{"drift", git, "--project", project, "-n", ns, "--kubeconfig", testCluster.Kubeconfig, "--color", "never", "--repo-root", git}
	for _, format := range []string{"text", "markdown", "json"} {
		t.Run(format, func(t *testing.T) {
			code, out, errOut := kubeplan(append(args, "-o", format)...)
			if code != 2 {
				t.Fatalf("exit code %d, want 2 (drift); stderr: %s\n%s", code, errOut, out)
			}
			if format == "json" {
				var r struct {
					Drifted bool
					Objects []struct {
						Object struct{ Name string }
						State  string
						Mode   string
						Fields []struct {
							Path     string
							ByDesign string
							Owners   []struct{ Manager, Operation, Subresource, Time string }
						}
					}
				}
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					t.Fatalf("json output does not parse: %v\n%s", err, out)
				}
				got := map[string]string{}
				for _, o := range r.Objects {
					s := o.State + " " + o.Mode
					for _, f := range o.Fields {
						s += fmt.Sprintf(" %s by %s %s %s design=%v", f.Path, f.Owners[0].Manager, f.Owners[0].Operation, f.Owners[0].Subresource, f.ByDesign != "")
						if f.Owners[0].Manager == "kubectl-edit" && f.Owners[0].Time == "" {
							t.Errorf("%s: no time", o.Object.Name)
						}
					}
					got[o.Object.Name] = s
				}
				want := map[string]string{
					"web":      "changed revert .spec.replicas by kubectl-edit Update  design=false",
					"api":      "changed notify .spec.replicas by kube-controller-manager Update scale design=true",
					"settings": "missing notify",
					"old":      "extra notify",
				}
				if fmt.Sprint(got) != fmt.Sprint(want) || !r.Drifted {
					t.Fatalf("objects:\n%v\nwant\n%v", got, want)
				}
				return
			}
			golden.Assert(t, "drift."+map[string]string{"text": "txt", "markdown": "md"}[format], driftTime.ReplaceAllString(out, " at (time)"))
		})
	}
}

// No drift exits 0; the drift settings of the repository's .kubeplan.yaml apply.
func TestDriftExitCodesAndSettings(t *testing.T) {
	ns := unique("drift-cli")
	kubectl(t, "", "create", "namespace", ns)
	repo := writeDir(t, map[string]string{"web.yaml": driftDeployment("web", "")})
	applyAsKubeplan(t, "web", ns, repo)
	args := []string{"drift", repo, "--project", "web", "-n", ns, "--kubeconfig", testCluster.Kubeconfig, "--color", "never"}

	code, out, errOut := kubeplan(args...)
	if code != 0 || out != "test / web — no drift (1 object checked)\n" {
		t.Fatalf("right after apply: exit %d\n%s%s", code, out, errOut)
	}

	// An HPA's replicas are not drift, unless the project counts them.
	kubectl(t, "", "patch", "deployment", "web", "-n", ns, "--subresource=scale", "--field-manager=kube-controller-manager", "-p", `{"spec":{"replicas":3}}`)
	if code, out, errOut := kubeplan(args...); code != 0 || !strings.Contains(out, "owned by design, not counted") {
		t.Fatalf("HPA-scaled: exit %d\n%s%s", code, out, errOut)
	}
	// The project whose dir is DIR names the project and its namespace (its inventory).
	config := filepath.Join(repo, ".kubeplan.yaml")
	projects := fmt.Sprintf("projects: [{name: web, dir: ., namespace: %s}]\n", ns)
	if err := os.WriteFile(config, []byte(projects), 0o644); err != nil {
		t.Fatal(err)
	}
	bare := []string{"drift", repo, "--kubeconfig", testCluster.Kubeconfig, "--color", "never"}
	if code, out, errOut := kubeplan(bare...); code != 0 || !strings.HasPrefix(out, "test / web — no drift") {
		t.Fatalf("project from .kubeplan.yaml: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(config, []byte(projects+"drift: {default_ignore: false}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := kubeplan(bare...); code != 2 || !strings.Contains(out, `.spec.replicas changed by "kube-controller-manager" (Update, subresource scale)`) {
		t.Fatalf("with default_ignore: false: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(config, []byte("drift: {mode: loud}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := kubeplan(args...); code != 1 || errOut != "kubeplan: .kubeplan.yaml: drift.mode \"loud\" (want notify, ignore or revert)\n" {
		t.Fatalf("bad settings: exit %d, stderr %q", code, errOut)
	}
}
