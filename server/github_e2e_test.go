package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/server"
)

const (
	token  = "emulator-token"
	secret = "webhook-secret"
	bot    = "kubeplan[bot]"
)

var prod *kubetest.Cluster

func TestMain(m *testing.M) {
	c, err := kubetest.Start("prod")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	prod = c
	code := m.Run()
	_ = c.Stop()
	os.Exit(code)
}

// env is one kubeplan service wired to the emulator and the prod cluster.
type env struct {
	t     *testing.T
	emu   *forgeemu.Emulator
	url   string // kubeplan's HTTP root
	state string
	stop  func()
}

func baseConfig(t *testing.T, emu *forgeemu.Emulator, state string) config.Config {
	cfg := config.Default()
	cfg.State = state
	cfg.WorkDir = filepath.Join(filepath.Dir(state), "work")
	cfg.Workers = 2
	cfg.JobTimeout = time.Minute
	cfg.GitHub.BaseURL = emu.GitHubAPI()
	cfg.GitHub.Token = token
	cfg.GitHub.WebhookSecret = secret
	cfg.Clusters = []cluster.Target{{Name: "prod", Kubeconfig: prod.Kubeconfig, Context: "prod"},
		{Name: "gone", Kubeconfig: unreachableKubeconfig(t), Context: "prod"}}
	cfg.DefaultCluster = "prod"
	return cfg
}

// start runs kubeplan serve in-process; workers false queues without working (a crash).
func start(t *testing.T, emu *forgeemu.Emulator, state string, workers bool) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s, err := server.New(context.Background(), baseConfig(t, emu, state), log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if workers {
			s.Run(ctx)
		}
		close(done)
	}()
	e := &env{t: t, emu: emu, url: srv.URL, state: state}
	e.stop = func() {
		cancel()
		<-done
		srv.Close()
		s.Close()
	}
	t.Cleanup(func() { e.stop() })
	return e
}

func unreachableKubeconfig(t *testing.T) string {
	raw, err := os.ReadFile(prod.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gone.kubeconfig")
	out := strings.Replace(string(raw), strings.TrimSuffix(prod.Config.Host, "/"), "https://127.0.0.1:1", 1)
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func kubectl(t *testing.T, stdin string, args ...string) {
	t.Helper()
	if _, err := prod.Kubectl(context.Background(), stdin, args...); err != nil {
		t.Fatal(err)
	}
}

func (e *env) send(kind, delivery string, payload any) int {
	e.t.Helper()
	resp, err := forgeemu.SendGitHub(e.url+"/webhooks/github", secret, kind, delivery, payload)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus waits for the plan status on sha to leave pending and returns the PR then.
func (e *env) waitStatus(repo string, number int, sha string) (forgeemu.PR, forge.Status) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		pr := e.emu.PRState(repo, number)
		if st, ok := pr.LatestStatus(sha, "kubeplan/plan"); ok && st.State != forge.Pending {
			return pr, st
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("no final kubeplan/plan status on %s within 90s", sha)
	return forgeemu.PR{}, forge.Status{}
}

func planComments(pr forgeemu.PR) []string {
	var out []string
	for _, c := range pr.Comments {
		if _, _, ok := comments.ParsePart(c.Body); ok {
			out = append(out, c.Body)
		}
	}
	return out
}

func deployment(image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: %q}]}
`, image)
}

const kubeplanYAML = `version: 1
projects:
- name: web
  dir: apps/web
  namespace: %s
  clusters: [prod]
`

// The whole pull-request journey on GitHub: open → one plan comment and statuses; push → the
// same comment updated; a huge plan → split comments, valid Markdown; shrinking → extra parts
// removed; user errors → one clear line in the comment and a failed status.
func TestGitHubPullRequestGetsOnePlanCommentUpdatedInPlace(t *testing.T) {
	const ns, repo = "gh-journey", "acme/platform"
	emu := forgeemu.New(token, bot)
	defer emu.Close()
	e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true)

	base := emu.CreateRepo(repo, map[string]string{
		".kubeplan.yaml":        fmt.Sprintf(kubeplanYAML, ns),
		"apps/web/deploy.yaml":  deployment("nginx:1.27"),
		"apps/web/service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}], selector: {app: web}}\n",
		"README.md":             "# platform\n",
	})
	kubectl(t, "", "create", "namespace", ns)
	kubectl(t, deployment("nginx:1.27")+"---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}], selector: {app: web}}\n",
		"apply", "--server-side", "--field-manager=kubeplan", "--prune", "--applyset=configmap/kubeplan-web", "-n", ns, "-f", "-")

	// Open: image bump, new ConfigMap, Service removed.
	n := emu.OpenPR(repo, "alice", "web: nginx 1.28", base, map[string]string{
		"apps/web/deploy.yaml":  deployment("nginx:1.28"),
		"apps/web/flags.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flags}\ndata: {checkout: v2}\n",
		"apps/web/service.yaml": "",
	})
	if code := e.send("pull_request", "d-open", emu.GitHubPullRequestEvent(repo, n, "opened", "alice")); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d", code)
	}
	head := emu.PRState(repo, n).HeadSHA
	pr, st := e.waitStatus(repo, n, head)
	if st.State != forge.Success || st.Description != "1 to create, 1 to change, 1 to delete" {
		t.Fatalf("status %+v", st)
	}
	bodies := planComments(pr)
	if len(bodies) != 1 {
		t.Fatalf("%d plan comments, want 1", len(bodies))
	}
	for _, want := range []string{
		"| web | prod | 1 | 1 | 1 | ⚠️ review warnings |",
		"prod / web — 1 to create, 1 to change, 1 to delete",
		"-      - image: nginx:1.27\n+      - image: nginx:1.28",
		"Service " + ns + "/web will be deleted",
		"`" + head[:12] + "`",
		"`/apply [-p PROJECT]`",
	} {
		if !strings.Contains(bodies[0], want) {
			t.Errorf("comment lacks %q:\n%s", want, bodies[0])
		}
	}
	firstID := pr.Comments[0].ID

	// Push: the same comment is updated in place.
	head2 := emu.Push(repo, n, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.29")})
	e.send("pull_request", "d-push-1", emu.GitHubPullRequestEvent(repo, n, "synchronize", "alice"))
	pr, st = e.waitStatus(repo, n, head2)
	bodies = planComments(pr)
	if len(bodies) != 1 || pr.Comments[0].ID != firstID {
		t.Fatalf("after a push: %d plan comments (first id %d, want %d)", len(bodies), pr.Comments[0].ID, firstID)
	}
	if !strings.Contains(bodies[0], "+      - image: nginx:1.29") || !strings.Contains(bodies[0], head2[:12]) {
		t.Fatalf("comment not updated to the new head:\n%s", bodies[0])
	}

	// A huge plan: split across numbered comments, each valid Markdown and within GitHub's limit.
	huge := map[string]string{}
	for i := 0; i < 120; i++ {
		huge[fmt.Sprintf("apps/web/big/cm-%03d.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big-%03d}\ndata:\n  blob: %q\n", i, strings.Repeat(fmt.Sprintf("line %d of a large generated config\n", i), 30))
	}
	head3 := emu.Push(repo, n, huge)
	e.send("pull_request", "d-push-2", emu.GitHubPullRequestEvent(repo, n, "synchronize", "alice"))
	pr, st = e.waitStatus(repo, n, head3)
	bodies = planComments(pr)
	if len(bodies) < 2 {
		t.Fatalf("a %d-object plan fit in %d comment(s)", 120, len(bodies))
	}
	for i, b := range bodies {
		if len(b) > comments.GitHubLimit {
			t.Errorf("part %d is %d characters", i+1, len(b))
		}
		if err := comments.CheckMarkdown(b); err != nil {
			t.Errorf("part %d: %v", i+1, err)
		}
	}
	if all := strings.Join(bodies, ""); strings.Count(all, "<code>+ ConfigMap "+ns+"/big-") != 120 {
		t.Errorf("the parts hold %d of the 120 new ConfigMaps", strings.Count(all, "<code>+ ConfigMap "+ns+"/big-"))
	}

	// Shrinking back: continuation parts are removed, the first stays.
	shrink := map[string]string{}
	for name := range huge {
		shrink[name] = ""
	}
	shrink["apps/web/deploy.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web\n" // and broken YAML
	head4 := emu.Push(repo, n, shrink)
	e.send("pull_request", "d-push-3", emu.GitHubPullRequestEvent(repo, n, "synchronize", "alice"))
	pr, st = e.waitStatus(repo, n, head4)
	bodies = planComments(pr)
	if len(bodies) != 1 || pr.Comments[0].ID != firstID {
		t.Fatalf("after shrinking: %d plan comments", len(bodies))
	}
	if st.State != forge.Failure || !strings.Contains(st.Description, "apps/web/deploy.yaml") {
		t.Errorf("status after bad YAML: %+v", st)
	}
	if !strings.Contains(bodies[0], "render apps/web: apps/web/deploy.yaml: document 1:") || strings.Contains(bodies[0], "goroutine") {
		t.Errorf("the comment does not name the bad file in one line:\n%s", bodies[0])
	}
}

func TestGitHubWebhooksAreVerifiedDeduplicatedAndSurviveRestart(t *testing.T) {
	const ns, repo = "gh-restart", "acme/restart"
	emu := forgeemu.New(token, bot)
	defer emu.Close()
	kubectl(t, "", "create", "namespace", ns)
	base := emu.CreateRepo(repo, map[string]string{".kubeplan.yaml": fmt.Sprintf(kubeplanYAML, ns), "apps/web/deploy.yaml": deployment("nginx:1.27")})
	n := emu.OpenPR(repo, "alice", "bump", base, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28")})
	state := filepath.Join(t.TempDir(), "state.db")

	// A kubeplan that accepts webhooks but dies before working on them.
	down := start(t, emu, state, false)
	payload := emu.GitHubPullRequestEvent(repo, n, "opened", "alice")
	if code := down.send("pull_request", "restart-1", payload); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d", code)
	}
	// Forged: refused, nothing queued.
	resp, err := forgeemu.SendGitHub(down.url+"/webhooks/github", "not-the-secret", "pull_request", "forged-1", payload)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged webhook answered %d, want 401", resp.StatusCode)
	}
	down.stop()

	// After the restart the queued event is planned, and a redelivery is not planned again.
	up := start(t, emu, state, true)
	pr, st := up.waitStatus(repo, n, emu.PRState(repo, n).HeadSHA)
	if st.State != forge.Success {
		t.Fatalf("status %+v", st)
	}
	if code := up.send("pull_request", "restart-1", payload); code != http.StatusOK {
		t.Fatalf("redelivery answered %d, want 200 (duplicate)", code)
	}
	time.Sleep(300 * time.Millisecond)
	after := emu.PRState(repo, n)
	if len(after.Statuses[after.HeadSHA]) != len(pr.Statuses[pr.HeadSHA]) {
		t.Fatalf("the redelivered event was planned again: %d statuses, had %d", len(after.Statuses[after.HeadSHA]), len(pr.Statuses[pr.HeadSHA]))
	}
}

func TestGitHubPlanReportsUnreachableClusterAndBadConfig(t *testing.T) {
	const repo = "acme/broken"
	emu := forgeemu.New(token, bot)
	defer emu.Close()
	e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true)
	base := emu.CreateRepo(repo, map[string]string{
		".kubeplan.yaml":       "projects:\n- {name: web, dir: apps/web, clusters: [gone]}\n",
		"apps/web/deploy.yaml": deployment("nginx:1.27"),
	})
	n := emu.OpenPR(repo, "alice", "bump", base, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28")})
	e.send("pull_request", "b-1", emu.GitHubPullRequestEvent(repo, n, "opened", "alice"))
	pr, st := e.waitStatus(repo, n, emu.PRState(repo, n).HeadSHA)
	if st.State != forge.Failure || !strings.Contains(st.Description, "gone/web: cluster gone: apiserver https://127.0.0.1:1 is unreachable: connection refused") {
		t.Fatalf("status %+v", st)
	}
	if b := planComments(pr); len(b) != 1 || !strings.Contains(b[0], "cluster gone: apiserver https://127.0.0.1:1 is unreachable: connection refused") {
		t.Fatalf("comment: %v", b)
	}

	head := emu.Push(repo, n, map[string]string{".kubeplan.yaml": "projects:\n- {name: web, dir: apps/web, clusterz: [prod]}\n"})
	e.send("pull_request", "b-2", emu.GitHubPullRequestEvent(repo, n, "synchronize", "alice"))
	pr, _ = e.waitStatus(repo, n, head)
	if b := planComments(pr); len(b) != 1 || !strings.Contains(b[0], `.kubeplan.yaml: error unmarshaling JSON: while decoding JSON: json: unknown field "clusterz"`) {
		t.Fatalf("comment: %v", b)
	}
}
