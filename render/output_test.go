package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// measureEnv makes this test binary a process that renders the project "p" of the repository
// it names, prints the error (if any) and exits: its peak memory is then the render's alone.
const measureEnv = "KUBEPLAN_RENDER_MEASURE_ROOT"

func TestMain(m *testing.M) {
	if root := os.Getenv(measureEnv); root != "" {
		_, err := Render(context.Background(), root, "p", Options{})
		fmt.Print(err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// peakRSS renders root's project p in a new process and returns that process's peak resident
// memory and what it printed.
func peakRSS(t *testing.T, root string) (int64, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), measureEnv+"="+root)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("measuring process: %v: %s", err, out)
	}
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10, string(out)
}

// The YAML bombs of the issue, each under go-yaml's own aliasing guard (which counts decoded
// nodes, not bytes): in process, they are refused with the reason, and rendering them takes no
// more memory than rendering one ConfigMap, give or take 32 MiB. (Before, the first took the
// process from ~40 MB to about 1 GB, and 3 GB with 400 aliases.)
func TestYAMLBombsAreRefusedWithinBoundedMemory(t *testing.T) {
	// A 1 MiB string, then 100 aliases of it: 1 MiB of file, 100 MiB of JSON.
	var long strings.Builder
	long.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: long}\ndata:\n  a: &a \"" + strings.Repeat("x", 1<<20-200) + "\"\n  b: [")
	for i := range 100 {
		if i > 0 {
			long.WriteString(",")
		}
		long.WriteString("*a")
	}
	long.WriteString("]\n")
	// Nodes rather than bytes: 345,000 decoded through aliases, with the 1% of literal nodes
	// go-yaml asks for below 400,000.
	var nodes strings.Builder
	nodes.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: nodes}\nlit: [" + strings.TrimSuffix(strings.Repeat("x,", 4100), ",") + "]\n")
	nodes.WriteString("a: &a [" + strings.TrimSuffix(strings.Repeat("x,", 10), ",") + "]\n")
	for i, name := range []string{"b", "c", "d", "e"} {
		prev := string(rune('a' + i))
		nodes.WriteString(name + ": &" + name + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+",", 10), ",") + "]\n")
	}
	nodes.WriteString("f: [*e,*e]\n")

	baseline, out := peakRSS(t, writeTree(t, map[string]string{"p/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: small}\n"}))
	if out != "<nil>" {
		t.Fatalf("the small project failed: %s", out)
	}
	for _, c := range []struct{ name, doc, want string }{
		{"aliases of a long string", long.String(), "p/bomb.yaml: document 1: its YAML aliases expand it to more than 4 MiB (4 times its size or 1 MiB, whichever is more)"},
		{"aliases of many nodes", nodes.String(), "p/bomb.yaml: document 1: its YAML aliases expand it to more than 1 MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rss, out := peakRSS(t, writeTree(t, map[string]string{"p/bomb.yaml": c.doc}))
			t.Logf("peak RSS %d MiB (one ConfigMap: %d MiB) for a %d KiB file", rss>>20, baseline>>20, len(c.doc)>>10)
			if !strings.HasPrefix(out, c.want) {
				t.Errorf("render said %q, want %q", out, c.want)
			}
			if rss > baseline+32<<20 {
				t.Errorf("peak RSS %d MiB, more than %d MiB + 32 MiB", rss>>20, baseline>>20)
			}
		})
	}
}

func TestAliasExpansionIsMeasuredBeforeDecoding(t *testing.T) {
	long := strings.Repeat("y", 300<<10)
	cases := []struct {
		name, doc string
		left      int64
		want      string // "" accepted
	}{
		{"no aliases", "a: 1\nb: [x, y]\n", 1 << 20, ""},
		{"merge keys as manifests use them", `defaults: &defaults {cpu: 100m, memory: 128Mi}
containers:
- {name: a, resources: {limits: *defaults, requests: {<<: *defaults, cpu: 50m}}}
- {name: b, resources: {limits: *defaults, requests: *defaults}}
`, 1 << 20, ""},
		{"an anchor named but not aliased", "a: &a x\nb: '*'\n", 1 << 20, ""},
		{"a long string aliased four times", "a: &a " + long + "\nb: [*a, *a, *a, *a]\n", 64 << 20, "its YAML aliases expand it to more than 1.2 MiB"},
		{"within the document's bound but beyond what the render may still produce", "a: &a [x, x, x, x]\nb: [*a, *a, *a]\n", 40, "more than the 40 bytes of manifests a render may produce"},
		{"an alias inside its own anchor", "a: &a [x, *a]\n", 1 << 20, "refers to the node that contains it"},
		{"not YAML", "a: &a [\n*a: {", 1 << 20, "its YAML aliases cannot be checked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkAliases([]byte(c.doc), c.left)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := checkAliases([]byte("a: &a [\n*a: {"), 1<<20); !errors.Is(err, errUncheckable) {
		t.Errorf("an unparsable document is not told apart: %v", err)
	}
}

// What a render produces is bounded for every renderer, whatever it read.
func TestEveryRendererBoundsWhatItProduces(t *testing.T) {
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\ndata: {blob: " + strings.Repeat("z", 40<<10) + "}\n"
	}
	root := writeTree(t, map[string]string{
		"plain/a.yaml": cm("a"), "plain/b.yaml": cm("b"), "plain/c.yaml": cm("c"),
		"kust/kustomization.yaml": "resources: [a.yaml, b.yaml, c.yaml]\n", "kust/a.yaml": cm("a"), "kust/b.yaml": cm("b"), "kust/c.yaml": cm("c"),
		"chart/Chart.yaml":        "apiVersion: v2\nname: chart\nversion: 0.1.0\n",
		"chart/templates/cm.yaml": "{{- range $i := until 3 }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-{{ $i }}}\ndata: {blob: {{ repeat 40960 \"z\" }}}\n{{- end }}\n",
	})
	limits := Limits{MaxOutputBytes: 100 << 10}
	for dir, want := range map[string]string{
		"plain": "plain: renders more than 100 KiB of manifests, the limit (reached at plain/c.yaml)",
		"kust":  "kust: renders more than 100 KiB of manifests, the limit",
		"chart": "chart: renders more than 100 KiB of manifests, the limit",
	} {
		_, err := Render(context.Background(), root, dir, Options{Limits: limits, Namespace: "default"})
		if err == nil || !IsRenderError(err) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", dir, err, want)
		}
		// Within the default limit, the same project renders.
		if res, err := Render(context.Background(), root, dir, Options{Namespace: "default"}); err != nil || len(res.Objects) != 3 {
			t.Errorf("%s within the limit: %v", dir, err)
		}
	}
}
