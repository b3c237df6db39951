package server_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
)

// A pull request whose Helm chart loops a billion times (anyone may open one on a public
// repository) fails its own project's plan with a clear reason; kubeplan stays up and plans
// the pull request's other project. (The forge does not matter here: GitHub drives it.)
func TestAHostileChartFailsItsOwnPlanOnly(t *testing.T) {
	const ns = "hostile"
	kubectl(t, "", "create", "namespace", ns)
	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	repo := "acme/" + ns
	base := emu.CreateRepo(repo, map[string]string{
		".kubeplan.yaml":                fmt.Sprintf("version: 1\nprojects:\n  - {name: web, dir: apps/web, namespace: %[1]s}\n  - {name: chart, dir: charts/bomb, namespace: %[1]s}\n", ns),
		"apps/web/cm.yaml":              journeyConfigMap("v1"),
		"charts/bomb/Chart.yaml":        "apiVersion: v2\nname: bomb\nversion: 0.1.0\n",
		"charts/bomb/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n",
	})
	e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(c *config.Config) {
		c.Render.MemoryMB, c.Render.Timeout.Duration = 256, 20*time.Second
	})
	j := &journey{t: t, fc: forges[0], e: e, emu: emu, repo: repo}

	n := emu.OpenPR(repo, "mallory", "innocent", base, map[string]string{
		"apps/web/cm.yaml":                journeyConfigMap("v2"),
		"charts/bomb/templates/bomb.yaml": "{{- range $i := until 1000000000 }}\n# {{ $i }}\n{{- end }}\n",
	})
	j.pull(n, "opened", "mallory")
	j.status(n, emu.PRState(repo, n).HeadSHA, "kubeplan/plan", forge.Failure, "")
	body := planComments(emu.PRState(repo, n))[0].Body
	for _, want := range []string{"charts/bomb: rendering needed more than 256 MiB of memory; kubeplan stopped it", "prod / web — 1 to create, 0 to change, 0 to delete"} {
		if !strings.Contains(body, want) {
			t.Errorf("plan comment lacks %q:\n%s", want, body)
		}
	}
	// Still serving: the readiness probe answers.
	if got := get(t, e.url+"/readyz"); !strings.Contains(got, `"ready":true`) {
		t.Fatalf("/readyz after the hostile chart: %s", got)
	}
}
