package isolate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/internal/testtree"
	"github.com/kubeplan/kubeplan/render"
)

// fetchEnv makes the test binary a process that cuts its network as a render child does, then
// GETs the URL it names and prints what happened.
const fetchEnv = "KUBEPLAN_ISOLATE_TEST_FETCH"

// The test binary is the render child of these tests.
func TestMain(m *testing.M) {
	RunChildIfAsked()
	if u := os.Getenv(fetchEnv); u != "" {
		cutNetwork()
		resp, err := http.Get(u)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			fmt.Printf("fetched: %s", body)
			os.Exit(0)
		}
		_, err = net.DefaultResolver.LookupHost(context.Background(), "example.com")
		fmt.Printf("refused: %v", err)
		os.Exit(0)
	}
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

// Only charts and kustomizations pay for a child: plain YAML is data read file by file and
// renders in process. (With no program to start, those fail and plain YAML renders.)
func TestChartsAndKustomizationsRenderInAChild(t *testing.T) {
	root := testtree.Write(t, map[string]string{
		"plain/cm.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"kust/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
		"kust/kustomization.yaml": "resources: [cm.yaml]\n",
		"chart/Chart.yaml":        chart,
		"chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
	})
	r := &Renderer{Program: filepath.Join(t.TempDir(), "no-such-program")}
	if res, err := r.Render(context.Background(), root, "plain", render.Options{}); err != nil || len(res.Objects) != 1 {
		t.Errorf("plain: %v", err)
	}
	for _, dir := range []string{"chart", "kust"} {
		if _, err := r.Render(context.Background(), root, dir, render.Options{}); err == nil || !strings.Contains(err.Error(), "no-such-program") {
			t.Errorf("%s rendered without its child: %v", dir, err)
		}
	}
	// A chart or kustomization named as such renders in a child whatever the directory holds.
	for _, named := range []render.Renderer{render.Helm, render.Kustomize} {
		if _, err := r.Render(context.Background(), root, "plain", render.Options{Renderer: named}); err == nil || !strings.Contains(err.Error(), "no-such-program") {
			t.Errorf("renderer %s did not use a child: %v", named, err)
		}
	}
}

// A kustomization renders in the child as in process, at the repository's root too.
func TestAKustomizationRendersInTheChildAsInProcess(t *testing.T) {
	root := testtree.Write(t, map[string]string{
		"kustomization.yaml":          "resources: [apps/web]\n",
		"apps/web/kustomization.yaml": "namePrefix: shop-\nresources: [deploy.yaml]\nconfigMapGenerator:\n- name: settings\n  files: [app.properties]\n",
		"apps/web/app.properties":     "mode=prod\n",
		"apps/web/deploy.yaml":        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3, progressDeadlineSeconds: 1000000, template: {spec: {containers: [{name: a, image: nginx, resources: {limits: {cpu: 0.5}}}]}}}\n",
	})
	for _, dir := range []string{".", "apps/web"} {
		want, err := render.Render(context.Background(), root, dir, render.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := (&Renderer{}).Render(context.Background(), root, dir, render.Options{})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if got.Renderer != render.Kustomize || len(got.Objects) != 2 || len(got.Objects) != len(want.Objects) {
			t.Fatalf("%s: child rendered %+v, the process %+v", dir, got, want)
		}
		for i := range want.Objects {
			if !reflect.DeepEqual(got.Objects[i].Object, want.Objects[i].Object) || got.Objects[i].Source != want.Objects[i].Source {
				t.Fatalf("%s: object %d: child %v, process %v", dir, i, got.Objects[i].Object, want.Objects[i].Object)
			}
		}
	}
}

// The child reaches no network whatever asks: Go's HTTP client fails before connecting (the
// server is never contacted) and so does the resolver. (kustomize fetches with an http.Client
// of its own, which uses http.DefaultTransport; render refuses URLs before the build, this holds
// for any it might miss.)
func TestTheRenderChildCannotReachTheNetwork(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "AWS_SECRET_ACCESS_KEY=leaked")
	}))
	defer srv.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fetchEnv+"="+srv.URL+"/latest/meta-data")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "refused: ") || !strings.Contains(string(out), "kubeplan fetches nothing while rendering") || hits.Load() != 0 {
		t.Fatalf("the child said %q; the server was contacted %d times", out, hits.Load())
	}
}

// Kustomizations that would hold a worker or its memory are stopped with their reason: a build
// that takes minutes of CPU (2,000 ConfigMaps, 20 patches on all of them: about 8 minutes) at
// the deadline; forty generator entries naming one 4 MiB file (each a copy) at the memory cap;
// and a schema kustomize panics on is that project's error, the next kustomization unaffected.
func TestHostileKustomizationsAreStopped(t *testing.T) {
	var slow strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&slow, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm%d}\ndata: {a: b}\n", i)
	}
	slowK := "resources: [cms.yaml]\npatches:\n"
	for j := range 20 {
		slowK += fmt.Sprintf("- target: {kind: ConfigMap}\n  patch: |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: any}\n    data: {k%d: v}\n", j)
	}
	gens := "configMapGenerator:\n"
	for i := range 40 {
		gens += fmt.Sprintf("- name: g%d\n  files: [blob.txt]\n", i)
	}
	root := testtree.Write(t, map[string]string{
		"apps/slow/kustomization.yaml":   slowK,
		"apps/slow/cms.yaml":             slow.String(),
		"apps/copies/kustomization.yaml": gens,
		"apps/copies/blob.txt":           strings.Repeat("x", 4<<20),
		"apps/schema/kustomization.yaml": "resources: [cm.yaml]\nopenapi: {path: schema.json}\n",
		"apps/schema/schema.json":        `"not a schema"`,
		"apps/schema/cm.yaml":            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\n",
		"apps/fine/kustomization.yaml":   "resources: [cm.yaml]\n",
		"apps/fine/cm.yaml":              "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {containers: [{name: a, image: nginx}]}}}\n",
	})
	r := &Renderer{Limits: Limits{Timeout: 2 * time.Minute, MemoryBytes: 256 << 20}}
	for _, c := range []struct {
		dir     string
		timeout time.Duration
		want    string
	}{
		{"apps/slow", 3 * time.Second, "apps/slow: rendering took longer than 3s; kubeplan stopped it"},
		{"apps/copies", time.Minute, "apps/copies: rendering needed more than 256 MiB of memory; kubeplan stopped it"},
		{"apps/schema", time.Minute, "apps/schema: kustomize build failed: invalid schema file"},
	} {
		start := time.Now()
		r := &Renderer{Limits: Limits{Timeout: c.timeout, MemoryBytes: 256 << 20}}
		_, err := r.Render(context.Background(), root, c.dir, render.Options{})
		if err == nil || !render.IsRenderError(err) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: error %v, want a render error starting %q", c.dir, err, c.want)
		}
		if took := time.Since(start); took > c.timeout+10*time.Second {
			t.Errorf("%s: stopping it took %s", c.dir, took)
		}
	}
	if res, err := r.Render(context.Background(), root, "apps/fine", render.Options{}); err != nil || len(res.Objects) != 1 {
		t.Fatalf("the next kustomization: %v", err)
	}
}

// Cancelling a plan stops its kustomize build at once (krusty takes no context: in process it
// ran on until done), and the child is gone.
func TestCancellingAPlanStopsItsKustomizeBuild(t *testing.T) {
	var cms strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&cms, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm%d}\n", i)
	}
	k := "resources: [cms.yaml]\npatches:\n"
	for j := range 20 {
		k += fmt.Sprintf("- target: {kind: ConfigMap}\n  patch: '{apiVersion: v1, kind: ConfigMap, metadata: {name: any}, data: {k%d: v}}'\n", j)
	}
	root := testtree.Write(t, map[string]string{"apps/slow/kustomization.yaml": k, "apps/slow/cms.yaml": cms.String()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := (&Renderer{}).Render(ctx, root, "apps/slow", render.Options{})
		done <- err
	}()
	child := waitForChild(t)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the render went on 10s after its plan was cancelled")
	}
	if err := syscall.Kill(child, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("render child %d still exists after the cancelled render returned (%v)", child, err)
	}
}

// waitForChild returns the pid of this process's render child once one runs.
func waitForChild(t *testing.T) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
			if err != nil || !strings.Contains(string(cmdline), childArg) {
				continue
			}
			if status, _ := os.ReadFile(filepath.Join(d, "status")); strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", os.Getpid())) {
				var pid int
				fmt.Sscan(filepath.Base(d), &pid)
				return pid
			}
		}
	}
	t.Fatal("saw no render child running")
	return 0
}
