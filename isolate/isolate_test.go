package isolate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/internal/testtree"
	"github.com/kubeplan/kubeplan/render"
)

// The test binary is the render child of these tests.
func TestMain(m *testing.M) {
	RunChildIfAsked()
	os.Exit(m.Run())
}

const chart = "apiVersion: v2\nname: web\nversion: 0.1.0\n"

// An ordinary project renders in the child exactly as in process.
func TestAChildRendersWhatTheProcessWould(t *testing.T) {
	root := testtree.Write(t, map[string]string{
		"apps/web/Chart.yaml":            chart,
		"apps/web/values.yaml":           "replicas: 3\n",
		"apps/web/templates/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\ndata: {replicas: {{ .Values.replicas | quote }}}\n",
		"apps/web/templates/NOTES.txt":   "hello\n",
		"apps/web/templates/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: {{ .Values.replicas }}\n  progressDeadlineSeconds: 1000000\n  template: {spec: {containers: [{name: app, image: nginx, resources: {limits: {cpu: 0.5}}}]}}\n",
	})
	opts := render.Options{Namespace: "shop", HelmRelease: "web"}
	want, err := render.Render(context.Background(), root, "apps/web", opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&Renderer{}).Render(context.Background(), root, "apps/web", opts)
	if err != nil {
		t.Fatal(err)
	}
	if got.Renderer != want.Renderer || !reflect.DeepEqual(got.Notes, want.Notes) || len(got.Objects) != len(want.Objects) {
		t.Fatalf("child rendered %+v, the process %+v", got, want)
	}
	for i := range want.Objects {
		if got.Objects[i].Source != want.Objects[i].Source || !reflect.DeepEqual(got.Objects[i].Object, want.Objects[i].Object) {
			t.Fatalf("object %d: child %v from %s, process %v from %s", i, got.Objects[i].Object, got.Objects[i].Source, want.Objects[i].Object, want.Objects[i].Source)
		}
	}
}

// Hostile charts fail their own render with a clear reason, quickly, and the service lives on.
func TestHostileChartsAreStopped(t *testing.T) {
	cases := []struct {
		name, template string
		limits         Limits
		want           string
	}{
		{"memory", "{{- range $i := until 50000000 }}\n# {{ $i }}\n{{- end }}\n", Limits{Timeout: time.Minute, MemoryBytes: 256 << 20},
			"apps/bomb: rendering needed more than 256 MiB of memory; kubeplan stopped it"},
		{"time", "{{- range until 100000 }}{{- range until 100000 }}{{- end }}{{- end }}\n", Limits{Timeout: 2 * time.Second, MemoryBytes: 256 << 20},
			"apps/bomb: rendering took longer than 2s; kubeplan stopped it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := testtree.Write(t, map[string]string{"apps/bomb/Chart.yaml": chart, "apps/bomb/templates/bomb.yaml": c.template})
			start := time.Now()
			_, err := (&Renderer{Limits: c.limits}).Render(context.Background(), root, "apps/bomb", render.Options{Namespace: "default"})
			if err == nil || !render.IsRenderError(err) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %v, want a render error starting %q", err, c.want)
			}
			if took := time.Since(start); took > c.limits.Timeout+10*time.Second {
				t.Fatalf("stopping it took %s", took)
			}
		})
	}
}

// A render error in the child is the same render error as in process: file and reason.
func TestRenderErrorsCrossOver(t *testing.T) {
	root := testtree.Write(t, map[string]string{"apps/web/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n"})
	_, want := render.Render(context.Background(), root, "apps/web", render.Options{})
	_, got := (&Renderer{}).Render(context.Background(), root, "apps/web", render.Options{})
	if want == nil || got == nil || got.Error() != want.Error() || !render.IsRenderError(got) {
		t.Fatalf("child error %v, process error %v", got, want)
	}
}

// The child that runs untrusted templates gets none of kubeplan's environment: no forge token,
// no webhook secret. Read from /proc while a child is running.
func TestTheChildGetsNoSecretsFromTheEnvironment(t *testing.T) {
	t.Setenv("KUBEPLAN_GITHUB_TOKEN", "s3cret-forge-token")
	root := testtree.Write(t, map[string]string{"apps/loop/Chart.yaml": chart,
		"apps/loop/templates/loop.yaml": "{{- range until 100000 }}{{- range until 100000 }}{{- end }}{{- end }}\n"})
	done := make(chan error, 1)
	go func() {
		_, err := (&Renderer{Limits: Limits{Timeout: 5 * time.Second, MemoryBytes: 256 << 20}}).Render(context.Background(), root, "apps/loop", render.Options{})
		done <- err
	}()
	var environ []byte
	for deadline := time.Now().Add(4 * time.Second); environ == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
			if err != nil || !strings.Contains(string(cmdline), childArg) {
				continue
			}
			if status, _ := os.ReadFile(filepath.Join(d, "status")); !strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", os.Getpid())) {
				continue
			}
			environ, _ = os.ReadFile(filepath.Join(d, "environ"))
		}
	}
	<-done
	if environ == nil {
		t.Fatal("saw no render child running")
	}
	if strings.Contains(string(environ), "s3cret-forge-token") || strings.Contains(string(environ), "KUBEPLAN_") {
		t.Fatalf("the render child's environment holds kubeplan's: %q", environ)
	}
}

// A render whose answer is larger than kubeplan will hold is stopped (the backstop behind the
// child's memory cap, which keeps answers below about a quarter of it).
func TestAnOversizeAnswerIsStopped(t *testing.T) {
	root := testtree.Write(t, map[string]string{"apps/big/Chart.yaml": chart,
		"apps/big/templates/cms.yaml": "{{- range $i := until 20 }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-{{ $i }}}\ndata: {blob: {{ randAlphaNum 100000 | quote }}}\n{{- end }}\n"})
	r := &Renderer{Limits: Limits{Timeout: time.Minute, MemoryBytes: 256 << 20}, maxAnswer: 1 << 20}
	_, err := r.Render(context.Background(), root, "apps/big", render.Options{})
	if err == nil || !render.IsRenderError(err) || !strings.Contains(err.Error(), "apps/big: rendered more than 1024 KiB of manifests") {
		t.Fatalf("error %v, want a render error about the size", err)
	}
	r.maxAnswer = 4 << 20 // the same chart within the bound renders
	if res, err := r.Render(context.Background(), root, "apps/big", render.Options{}); err != nil || len(res.Objects) != 20 {
		t.Fatalf("within the bound: %v", err)
	}
}

// Only charts pay for a child: plain YAML and Kustomize are data and render in process. (With
// no program to start, the chart fails and the others render.)
func TestOnlyChartsRenderInAChild(t *testing.T) {
	root := testtree.Write(t, map[string]string{
		"plain/cm.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"kust/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
		"kust/kustomization.yaml": "resources: [cm.yaml]\n",
		"chart/Chart.yaml":        chart,
		"chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
	})
	r := &Renderer{Program: filepath.Join(t.TempDir(), "no-such-program")}
	for _, dir := range []string{"plain", "kust"} {
		if res, err := r.Render(context.Background(), root, dir, render.Options{}); err != nil || len(res.Objects) != 1 {
			t.Errorf("%s: %v", dir, err)
		}
	}
	if _, err := r.Render(context.Background(), root, "chart", render.Options{}); err == nil || !strings.Contains(err.Error(), "no-such-program") {
		t.Errorf("chart rendered without its child: %v", err)
	}
	// A chart named as such renders in a child whatever the directory holds.
	if _, err := r.Render(context.Background(), root, "plain", render.Options{Renderer: render.Helm}); err == nil || !strings.Contains(err.Error(), "no-such-program") {
		t.Errorf("renderer helm did not use a child: %v", err)
	}
}
