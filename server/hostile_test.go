package server_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/internal/fetchtrap"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/store"
)

// A pull request whose Helm chart loops a billion times (anyone may open one on a public
// repository) fails its own project's plan with a clear reason; kubeplan stays up and plans
// the pull request's other project. (The forge does not matter here: GitHub drives it.)
func TestAHostileChartFailsItsOwnPlanOnly(t *testing.T) {
	ns := unique("hostile")
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

// A pull request whose event kills kubeplan each time it is worked on (here: three processes
// take the job and die with it) is not worked on a fourth time after the next start: the
// pull request is told kubeplan gave up, and the plan status of its head says why instead of
// staying pending.
func TestAnEventThatKeepsKillingKubeplanIsGivenUp(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			ctx := context.Background()
			emu, repo, n := bumpPR(t, unique("crashloop-"+fc.name), "")
			head := emu.PRState(repo, n).HeadSHA
			state := filepath.Join(t.TempDir(), "state.db")
			down := start(t, emu, state, false)
			if code := fc.send(down, "opened", repo, n, "crash-1", secret); code != http.StatusAccepted {
				t.Fatalf("webhook answered %d", code)
			}
			down.stop()
			for i := 0; i < 3; i++ { // a process starts, takes the job, and dies working on it
				q, err := store.Open(ctx, state)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := q.RecoverInterrupted(ctx); err != nil {
					t.Fatal(err)
				}
				if j, err := q.Claim(ctx); err != nil || j == nil || j.GiveUp {
					t.Fatalf("attempt %d: claimed %+v %v", i+1, j, err)
				}
				q.Close()
			}

			up := start(t, emu, state, true) // jobAttempts is 3, the default
			pr, st := up.waitStatus(repo, n, head)
			want := "kubeplan gave up: kubeplan stopped while working on this 3 times; giving up"
			if st.State == forge.Success || st.State == forge.Pending || st.Description != want {
				t.Fatalf("plan status %+v, want an error saying %q", st, want)
			}
			if len(planComments(pr)) != 0 {
				t.Fatal("the event was worked on a fourth time: there is a plan comment")
			}
			var told []string
			for _, c := range pr.Comments {
				if c.Author == bot && strings.Contains(c.Body, "kubeplan gave up on the ") && strings.Contains(c.Body, "kubeplan stopped while working on this 3 times") {
					told = append(told, c.Body)
				}
			}
			if len(told) != 1 {
				t.Fatalf("the pull request was told %d times that kubeplan gave up, want once: %+v", len(told), pr.Comments)
			}
		})
	}
}

// unique suffixes a namespace name so that a test can run again (-count=2) on the same cluster.
func unique(name string) string { return fmt.Sprintf("%s-%x", name, time.Now().UnixNano()&0xffffff) }

// A pull request whose kustomizations name URLs — a cloud metadata endpoint in a generator's
// files, a URL that answers one byte a second as a patch — gets a plan comment saying each URL
// is refused; neither is fetched (the response would have landed in the comment, and the
// trickle held the plan for as long as it lasted), and the pull request's other project, a
// kustomization at the repository's root, is planned.
func TestAKustomizationCannotMakeKubeplanFetch(t *testing.T) {
	ns := fmt.Sprintf("fetch-%d", time.Now().UnixNano())
	kubectl(t, "", "create", "namespace", ns)
	metadata := fetchtrap.New(t)

	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	repo := "acme/" + ns
	base := emu.CreateRepo(repo, map[string]string{
		".kubeplan.yaml":               fmt.Sprintf("version: 1\nprojects:\n  - {name: root, dir: ., namespace: %[1]s}\n  - {name: leak, dir: apps/leak, namespace: %[1]s}\n  - {name: slow, dir: apps/slow, namespace: %[1]s}\n", ns),
		"kustomization.yaml":           "resources: [cm.yaml]\n",
		"cm.yaml":                      journeyConfigMap("v1"),
		"apps/leak/kustomization.yaml": "configMapGenerator:\n- name: creds\n  literals: [user=app]\n",
		"apps/slow/kustomization.yaml": "resources: [cm.yaml]\n",
		"apps/slow/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: slow}\n",
	})
	e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(c *config.Config) {
		c.Render.Timeout.Duration = 10 * time.Minute // a fetch, had it started, would hold the plan
	})
	j := &journey{t: t, fc: forges[0], e: e, emu: emu, repo: repo}

	leak := metadata.URL + "/latest/meta-data/iam/security-credentials/node"
	trickle := metadata.URL + "/trickle"
	n := emu.OpenPR(repo, "mallory", "tidy config", base, map[string]string{
		"cm.yaml":                      journeyConfigMap("v2"),
		"apps/leak/kustomization.yaml": "configMapGenerator:\n- name: creds\n  files: [" + leak + "]\n",
		"apps/slow/kustomization.yaml": "resources: [cm.yaml]\npatches:\n- path: " + trickle + "\n",
	})
	j.pull(n, "opened", "mallory")
	j.status(n, emu.PRState(repo, n).HeadSHA, "kubeplan/plan", forge.Failure, "")
	body := planComments(emu.PRState(repo, n))[0].Body
	for _, want := range []string{
		`apps/leak/kustomization.yaml: configMapGenerator[0].files[0] "` + leak + `" is remote (a URL or git reference): kubeplan fetches nothing while rendering`,
		`apps/slow/kustomization.yaml: patches[0].path "` + trickle + `" is remote`,
		"prod / root — 1 to create, 0 to change, 0 to delete",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("plan comment lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, fetchtrap.Secret) {
		t.Errorf("the fetched secret is in the plan comment:\n%s", body)
	}
	if metadata.Hits() != 0 {
		t.Errorf("kubeplan contacted the URLs the kustomizations name %d times", metadata.Hits())
	}
}
