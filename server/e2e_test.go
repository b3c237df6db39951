package server_test

import (
	"context"
	"database/sql"
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
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/isolate"
	"github.com/kubeplan/kubeplan/server"
	"github.com/kubeplan/kubeplan/store"
)

const (
	token  = "emulator-token"
	secret = "webhook-secret"
	bot    = "kubeplan-bot"
)

var prod *kubetest.Cluster

func TestMain(m *testing.M) {
	isolate.RunChildIfAsked() // the server renders in children of this test binary
	os.Exit(kubetest.RunWithCluster(m, "prod", &prod))
}

// forgeCase drives one forge through the emulator: how webhooks are sent and shaped.
type forgeCase struct {
	name  string
	limit int
	// send delivers a webhook with this delivery id and secret; kind is opened or pushed.
	send func(e *env, kind string, repo string, number int, delivery, secret string) int
	// comment delivers the webhook for a new comment.
	comment func(e *env, repo string, number int, c *forgeemu.Comment, delivery string) int
}

var forges = []forgeCase{
	{name: "github", limit: forge.MaxGitHubComment, send: func(e *env, kind, repo string, n int, delivery, sec string) int {
		action := map[string]string{"opened": "opened", "pushed": "synchronize", "ready": "ready_for_review"}[kind]
		return e.answer(forgeemu.SendGitHub(e.url+"/webhooks/github", sec, "pull_request", delivery, e.emu.GitHubPullRequestEvent(repo, n, action, "alice")))
	}, comment: func(e *env, repo string, n int, c *forgeemu.Comment, delivery string) int {
		return e.answer(forgeemu.SendGitHub(e.url+"/webhooks/github", secret, "issue_comment", delivery, e.emu.GitHubCommentEvent(repo, n, c)))
	}},
	{name: "gitlab", limit: forge.MaxGitLabNote, send: func(e *env, kind, repo string, n int, delivery, sec string) int {
		action := map[string]string{"opened": "open", "pushed": "update", "ready": "update"}[kind]
		return e.answer(forgeemu.SendGitLab(e.url+"/webhooks/gitlab", sec, "Merge Request Hook", delivery, e.emu.GitLabMergeRequestEvent(repo, n, action, "alice")))
	}, comment: func(e *env, repo string, n int, c *forgeemu.Comment, delivery string) int {
		return e.answer(forgeemu.SendGitLab(e.url+"/webhooks/gitlab", secret, "Note Hook", delivery, e.emu.GitLabNoteEvent(repo, n, c)))
	}},
}

// env is one kubeplan service wired to the emulator (both forges) and the prod cluster.
type env struct {
	t    *testing.T
	emu  *forgeemu.Emulator
	url  string
	stop func()
}

// start runs kubeplan serve in-process; with workers false it queues without working, like a
// process that dies before it gets to its queue.
func start(t *testing.T, emu *forgeemu.Emulator, state string, workers bool, adjust ...func(*config.Config)) *env {
	t.Helper()
	cfg := config.Default()
	cfg.State = state
	cfg.WorkDir = filepath.Join(filepath.Dir(state), "work")
	if store.IsPostgres(state) {
		cfg.WorkDir = filepath.Join(t.TempDir(), "work") // each replica has its own disk
	}
	cfg.Workers = 2
	cfg.JobTimeout.Duration = time.Minute
	cfg.RetryBackoff.Duration = 100 * time.Millisecond
	cfg.GitHub.BaseURL, cfg.GitHub.Token, cfg.GitHub.WebhookSecret = emu.GitHubAPI(), token, secret
	cfg.GitLab.BaseURL, cfg.GitLab.Token, cfg.GitLab.WebhookSecret = emu.GitLabAPI(), token, secret
	cfg.Clusters = []cluster.Target{{Name: "prod", Kubeconfig: prod.Kubeconfig, Context: "prod"},
		{Name: "gone", Kubeconfig: unreachableKubeconfig(t), Context: "prod"}}
	cfg.DefaultCluster = "prod"
	for _, f := range adjust {
		f(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s, err := server.New(context.Background(), cfg, log)
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
	e := &env{t: t, emu: emu, url: srv.URL}
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		srv.Close()
		s.Close()
	}
	t.Cleanup(e.stop)
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

// answer is the status code of a webhook delivery.
func (e *env) answer(resp *http.Response, err error) int {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus waits for the plan status on sha to leave pending and returns the PR then.
func (e *env) waitStatus(repo string, number int, sha string) (pr forgeemu.PR, st forge.Status) {
	e.t.Helper()
	waitFor(e.t, "final kubeplan/plan status on "+sha, func() bool {
		pr = e.emu.PRState(repo, number)
		var ok bool
		st, ok = pr.LatestStatus(sha, "kubeplan/plan")
		return ok && st.State != forge.Pending
	})
	return pr, st
}

// waitMetrics waits until /metrics holds every wanted line.
func (e *env) waitMetrics(want ...string) {
	e.t.Helper()
	waitFor(e.t, "/metrics line "+strings.Join(want, ", "), func() bool {
		metrics := get(e.t, e.url+"/metrics")
		for _, w := range want {
			if !strings.Contains(metrics, w+"\n") {
				return false
			}
		}
		return true
	})
}

// waitFor waits up to 90s for cond, checking it every 50 ms: the one polling loop of these
// tests, which wait for what they mean, never for a fixed time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 90s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// planComments are kubeplan's plan comments (the marker, posted by kubeplan's user).
// planStatuses lists the kubeplan/plan statuses set on a commit, in order.
func planStatuses(pr forgeemu.PR, sha string) []forge.Status {
	var out []forge.Status
	for _, st := range pr.Statuses[sha] {
		if st.Context == "kubeplan/plan" {
			out = append(out, st)
		}
	}
	return out
}

func planComments(pr forgeemu.PR) []forgeemu.Comment {
	var out []forgeemu.Comment
	for _, c := range pr.Comments {
		if _, _, ok := comments.ParsePart(c.Body); ok && c.Author == bot {
			out = append(out, *c)
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

const service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}], selector: {app: web}}\n"

const kubeplanYAML = `version: 1
projects:
- name: web
  dir: apps/web
  namespace: %s
  clusters: [prod]
`

// The pull-request journey on each forge: open → one plan comment and statuses; push → the same
// comment updated; a plan over the forge's limit → split comments, each valid Markdown; shrinking
// → extra parts removed; a user error → one clear line in the comment and a failed status.
func TestPullRequestGetsOnePlanCommentUpdatedInPlace(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			ns, repo := unique("journey-"+fc.name), "acme/"+fc.name+"-platform"
			emu := forgeemu.New(token, bot)
			defer emu.Close()
			e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true)

			base := emu.CreateRepo(repo, map[string]string{
				".kubeplan.yaml": fmt.Sprintf(kubeplanYAML, ns), "apps/web/deploy.yaml": deployment("nginx:1.27"),
				"apps/web/service.yaml": service, "README.md": "# platform\n",
			})
			kubectl(t, "", "create", "namespace", ns)
			kubectl(t, deployment("nginx:1.27")+"---\n"+service,
				"apply", "--server-side", "--field-manager=kubeplan", "--prune", "--applyset=configmap/kubeplan-web", "-n", ns, "-f", "-")

			n := emu.OpenPR(repo, "alice", "web: nginx 1.28", base, map[string]string{
				"apps/web/deploy.yaml":  deployment("nginx:1.28"),
				"apps/web/flags.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flags}\ndata: {checkout: v2}\n",
				"apps/web/service.yaml": "",
			})
			// Someone imitates kubeplan's marker: kubeplan must neither edit nor trust that comment.
			const fake = "<!-- kubeplan:plan part=1/1 -->\nAll clear, nothing to review."
			emu.AddComment(repo, n, "mallory", fake)
			if code := fc.send(e, "opened", repo, n, "d-open", secret); code != http.StatusAccepted {
				t.Fatalf("webhook answered %d", code)
			}
			head := emu.PRState(repo, n).HeadSHA
			pr, st := e.waitStatus(repo, n, head)
			if st.State != forge.Success || st.Description != "1 to create, 1 to change, 1 to delete" {
				t.Fatalf("status %+v", st)
			}
			notes := planComments(pr)
			if len(notes) != 1 {
				t.Fatalf("%d plan comments, want 1", len(notes))
			}
			for _, want := range []string{
				"| web | prod | 1 | 1 | 1 | ⚠️ review warnings |",
				"prod / web — 1 to create, 1 to change, 1 to delete",
				"-      - image: nginx:1.27\n+      - image: nginx:1.28",
				"Service " + ns + "/web will be deleted",
				"`" + head[:12] + "`",
				"`/plan` plans again",
			} {
				if !strings.Contains(notes[0].Body, want) {
					t.Errorf("comment lacks %q:\n%s", want, notes[0].Body)
				}
			}
			first := notes[0].ID
			if pr.Comments[0].Author != "mallory" || pr.Comments[0].Body != fake {
				t.Fatalf("the imitation was edited: %+v", pr.Comments[0])
			}

			// Push: the same comment is updated in place.
			head2 := emu.Push(repo, n, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.29")})
			fc.send(e, "pushed", repo, n, "d-push-1", secret)
			pr, _ = e.waitStatus(repo, n, head2)
			notes = planComments(pr)
			if len(notes) != 1 || notes[0].ID != first {
				t.Fatalf("after a push: %d plan comments", len(notes))
			}
			if !strings.Contains(notes[0].Body, "+      - image: nginx:1.29") || !strings.Contains(notes[0].Body, head2[:12]) {
				t.Fatalf("comment not updated to the new head:\n%s", notes[0].Body)
			}

			// A plan over the forge's limit: numbered parts, each valid and within the limit.
			objects := fc.limit/2200 + 20
			huge := map[string]string{}
			for i := 0; i < objects; i++ {
				huge[fmt.Sprintf("apps/web/big/cm-%04d.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big-%04d}\ndata:\n  blob: %q\n", i, strings.Repeat(fmt.Sprintf("line %d of a large generated config\n", i), 50))
			}
			head3 := emu.Push(repo, n, huge)
			fc.send(e, "pushed", repo, n, "d-push-2", secret)
			pr, _ = e.waitStatus(repo, n, head3)
			notes = planComments(pr)
			if len(notes) < 2 {
				t.Fatalf("a %d-object plan fit in %d comment(s)", objects, len(notes))
			}
			all := ""
			for i, c := range notes {
				if len(c.Body) > fc.limit {
					t.Errorf("part %d is %d characters, over %d", i+1, len(c.Body), fc.limit)
				}
				if err := comments.CheckMarkdown(c.Body); err != nil {
					t.Errorf("part %d: %v", i+1, err)
				}
				all += c.Body
			}
			if got := strings.Count(all, "<code>+ ConfigMap "+ns+"/big-"); got != objects {
				t.Errorf("the parts hold %d of the %d new ConfigMaps", got, objects)
			}

			// Shrinking back (and breaking the YAML): extra parts removed, the error named.
			shrink := map[string]string{"apps/web/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web\n"}
			for name := range huge {
				shrink[name] = ""
			}
			head4 := emu.Push(repo, n, shrink)
			fc.send(e, "pushed", repo, n, "d-push-3", secret)
			pr, st = e.waitStatus(repo, n, head4)
			notes = planComments(pr)
			if len(notes) != 1 || notes[0].ID != first {
				t.Fatalf("after shrinking: %d plan comments", len(notes))
			}
			if st.State != forge.Failure || !strings.Contains(st.Description, "apps/web/deploy.yaml") {
				t.Errorf("status after bad YAML: %+v", st)
			}
			if !strings.Contains(notes[0].Body, "render apps/web: apps/web/deploy.yaml: document 1:") || strings.Contains(notes[0].Body, "goroutine") {
				t.Errorf("the comment does not name the bad file in one line:\n%s", notes[0].Body)
			}
		})
	}
}

func TestWebhooksAreVerifiedDeduplicatedAndSurviveRestart(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			emu, repo, n := bumpPR(t, unique("restart-"+fc.name), "")
			state := filepath.Join(t.TempDir(), "state.db")

			down := start(t, emu, state, false)
			if code := fc.send(down, "opened", repo, n, "delivery-1", secret); code != http.StatusAccepted {
				t.Fatalf("webhook answered %d", code)
			}
			if code := fc.send(down, "opened", repo, n, "forged-1", "not-the-secret"); code != http.StatusUnauthorized {
				t.Fatalf("forged webhook answered %d, want 401", code)
			}
			down.stop()

			up := start(t, emu, state, true)
			_, st := up.waitStatus(repo, n, emu.PRState(repo, n).HeadSHA)
			if st.State != forge.Success {
				t.Fatalf("status %+v", st)
			}
			// The plan status is set before the job's other statuses: compare once the job is done.
			up.waitMetrics(`kubeplan_jobs_total{outcome="done"} 1`, `kubeplan_jobs_pending 0`)
			pr := emu.PRState(repo, n)
			if code := fc.send(up, "opened", repo, n, "delivery-1", secret); code != http.StatusOK {
				t.Fatalf("redelivery answered %d, want 200 (duplicate)", code)
			}
			// A delivery is queued before it is answered, so nothing can be pending now.
			after := emu.PRState(repo, n)
			if len(after.Statuses[after.HeadSHA]) != len(pr.Statuses[pr.HeadSHA]) || len(planComments(after)) != 1 {
				t.Fatalf("the redelivered or forged event was acted on: %d statuses (had %d), %d comments",
					len(after.Statuses[after.HeadSHA]), len(pr.Statuses[pr.HeadSHA]), len(planComments(after)))
			}
			metrics := get(t, up.url+"/metrics")
			for _, want := range []string{
				`kubeplan_webhook_requests_total{forge="` + fc.name + `",outcome="duplicate_or_ignored"} 1`,
				`kubeplan_jobs_total{outcome="done"} 1`,
				`kubeplan_jobs_pending 0`,
				`kubeplan_webhook_duration_seconds_count{forge="` + fc.name + `"} 1`,
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
		})
	}
}

func TestPlanReportsUnreachableClusterBadConfigAndForgeOutage(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			repo := "acme/" + fc.name + "-broken"
			emu := forgeemu.New(token, bot)
			defer emu.Close()
			e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true)
			base := emu.CreateRepo(repo, map[string]string{
				".kubeplan.yaml":       "projects:\n- {name: web, dir: apps/web, clusters: [gone]}\n",
				"apps/web/deploy.yaml": deployment("nginx:1.27"),
			})
			n := emu.OpenPR(repo, "alice", "bump", base, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28")})
			// The forge is down for the first calls: retried with backoff, then planned.
			emu.FailNext(2, http.StatusBadGateway)
			fc.send(e, "opened", repo, n, "b-1", secret)
			pr, st := e.waitStatus(repo, n, emu.PRState(repo, n).HeadSHA)
			if st.State != forge.Failure || !strings.Contains(st.Description, "gone/web: cluster gone: apiserver is unreachable: connection refused") {
				t.Fatalf("status %+v", st)
			}
			if c := planComments(pr); len(c) != 1 || !strings.Contains(c[0].Body, "cluster gone: apiserver is unreachable: connection refused") {
				t.Fatalf("comments: %v", c)
			}

			head := emu.Push(repo, n, map[string]string{".kubeplan.yaml": "projects:\n- {name: web, dir: apps/web, clusterz: [prod]}\n"})
			fc.send(e, "pushed", repo, n, "b-2", secret)
			pr, _ = e.waitStatus(repo, n, head)
			if c := planComments(pr); len(c) != 1 || !strings.Contains(c[0].Body, `.kubeplan.yaml: error unmarshaling JSON: while decoding JSON: json: unknown field "clusterz"`) {
				t.Fatalf("comments: %v", c)
			}
		})
	}
}

// Drafts wait when the repository says so; quick pushes coalesce into one plan of the newest head.
func TestDraftsWaitAndQuickPushesCoalesce(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			emu, repo, n := bumpPR(t, unique("drafts-"+fc.name), "drafts: skip\n")
			emu.SetDraft(repo, n, true)
			state := filepath.Join(t.TempDir(), "state.db")
			e := start(t, emu, state, true)
			fc.send(e, "opened", repo, n, "draft-1", secret)
			pr, st := e.waitStatus(repo, n, emu.PRState(repo, n).HeadSHA)
			if st.State != forge.Success || st.Description != "Draft: planning waits until ready for review" || len(planComments(pr)) != 0 {
				t.Fatalf("draft: status %+v, %d comments", st, len(planComments(pr)))
			}
			emu.SetDraft(repo, n, false)
			e.stop()

			// Ready, then ten quick pushes while kubeplan is down: one plan of the newest head.
			down := start(t, emu, state, false)
			fc.send(down, "ready", repo, n, "ready-1", secret)
			var head string
			for i := 0; i < 10; i++ {
				head = emu.Push(repo, n, map[string]string{"apps/web/deploy.yaml": deployment(fmt.Sprintf("nginx:1.%d", 30+i))})
				fc.send(down, "pushed", repo, n, fmt.Sprintf("push-%d", i), secret)
			}
			down.stop()
			up := start(t, emu, state, true)
			pr, st = up.waitStatus(repo, n, head)
			if st.State != forge.Success {
				t.Fatalf("status %+v", st)
			}
			time.Sleep(300 * time.Millisecond)
			pr = emu.PRState(repo, n)
			if got := len(planStatuses(pr, head)); got != 2 {
				t.Fatalf("%d kubeplan/plan statuses on the newest head, want 2 (pending, then the result of one plan)", got)
			}
			if c := planComments(pr); len(c) != 1 || !strings.Contains(c[0].Body, "nginx:1.39") {
				t.Fatalf("comments: %d", len(c))
			}
		})
	}
}

// A forge outage while posting the plan is not a lost plan, nor a plan posted twice. A failed
// post is looked for and posted again within the job; a comment the forge stored before
// failing is found, not doubled. When the outage outlasts that, the status says so at once
// and the job runs again after a backoff.
func TestForgeOutageWhilePostingThePlanIsRetried(t *testing.T) {
	for _, fc := range forges {
		for _, c := range []struct {
			name  string
			fault func(emu *forgeemu.Emulator, path string)
			// statuses are the plan statuses on the head, in order (GitLab has no "error"
			// state: kubeplan reports it as failed).
			statuses map[string]string
		}{
			{"long", func(emu *forgeemu.Emulator, path string) {
				emu.FailRequests(http.MethodPost, path, 3, http.StatusBadGateway)
			},
				map[string]string{"github": "pending,error,pending,success", "gitlab": "pending,failure,pending,success"}},
			{"stored", func(emu *forgeemu.Emulator, path string) {
				emu.FailAfterHandling(http.MethodPost, path, 1, http.StatusBadGateway)
			}, map[string]string{"github": "pending,success", "gitlab": "pending,success"}},
		} {
			t.Run(fc.name+"/"+c.name, func(t *testing.T) {
				emu, repo, n := bumpPR(t, unique("outage-"+c.name+"-"+fc.name), "")
				c.fault(emu, map[string]string{"github": "/comments", "gitlab": "/notes"}[fc.name])
				e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true)
				fc.send(e, "opened", repo, n, "o-1", secret)
				head := emu.PRState(repo, n).HeadSHA
				deadline := time.Now().Add(60 * time.Second)
				for time.Now().Before(deadline) {
					if st, ok := emu.PRState(repo, n).LatestStatus(head, "kubeplan/plan"); ok && st.State == forge.Success {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				pr := emu.PRState(repo, n)
				var states []string
				for _, st := range planStatuses(pr, head) {
					states = append(states, string(st.State))
				}
				if got, want := strings.Join(states, ","), c.statuses[fc.name]; got != want {
					t.Fatalf("statuses %s, want %s", got, want)
				}
				if c := planComments(pr); len(c) != 1 {
					t.Fatalf("%d plan comments, want 1", len(c))
				}
			})
		}
	}
}

// bumpPR sets up the usual scene: an emulator, namespace name, repository acme/name whose
// project web (apps/web, namespace name) runs nginx:1.27, and a pull request bumping it to 1.28.
// configPrefix is prepended to .kubeplan.yaml.
func bumpPR(t *testing.T, name, configPrefix string) (*forgeemu.Emulator, string, int) {
	t.Helper()
	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	kubectl(t, "", "create", "namespace", name)
	repo := "acme/" + name
	base := emu.CreateRepo(repo, map[string]string{".kubeplan.yaml": configPrefix + fmt.Sprintf(kubeplanYAML, name), "apps/web/deploy.yaml": deployment("nginx:1.27")})
	return emu, repo, emu.OpenPR(repo, "alice", "bump", base, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28")})
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// Commands in comments: acknowledged with a reaction and answered; /plan plans again; mistakes
// get help; comments that are not commands, and kubeplan's own, are ignored.
func TestCommandsInComments(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			emu, repo, n := bumpPR(t, unique("commands-"+fc.name), "")
			emu.SetPermission(repo, "bob", forge.PermRead)
			e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true)
			fc.send(e, "opened", repo, n, "c-open", secret)
			head := emu.PRState(repo, n).HeadSHA
			e.waitStatus(repo, n, head)

			// say posts a comment as author and waits until kubeplan has dealt with it.
			say := func(author, body string, wantReply bool) (*forgeemu.Comment, string) {
				t.Helper()
				before := len(emu.PRState(repo, n).Comments)
				c := emu.AddComment(repo, n, author, body)
				if code := fc.comment(e, repo, n, c, fmt.Sprintf("c-%d", c.ID)); code != http.StatusAccepted {
					t.Fatalf("comment webhook answered %d", code)
				}
				deadline := time.Now().Add(30 * time.Second)
				for wantReply && time.Now().Before(deadline) {
					pr := emu.PRState(repo, n)
					if len(pr.Comments) > before+1 {
						return c, pr.Comments[len(pr.Comments)-1].Body
					}
					time.Sleep(50 * time.Millisecond)
				}
				if wantReply {
					t.Fatalf("no reply to %q", body)
				}
				time.Sleep(500 * time.Millisecond)
				return c, ""
			}

			_, reply := say("bob", "/aply -p web", true)
			if !strings.HasPrefix(reply, "@bob `/aply` is not a kubeplan command. Did you mean `/apply`?") || !strings.Contains(reply, "`/help` shows this") {
				t.Errorf("reply to a typo: %q", reply)
			}
			if _, reply = say("bob", "/plan web", true); !strings.Contains(reply, `unexpected "web" (flags are -p PROJECT and -c CLUSTER)`) {
				t.Errorf("reply to a bad flag: %q", reply)
			}
			if _, reply = say("bob", "/help", true); !strings.Contains(reply, "`/plan [-p PROJECT] [-c CLUSTER]` plans again") {
				t.Errorf("reply to /help: %q", reply)
			}
			// bob may read the repository: he may not apply, and a stranger may not even plan.
			// Each is told in the forge's own words (GitLab's roles are Guest, Reporter, …).
			words := map[string]struct{ read, write, none string }{
				"github": {"read", "write", "none"}, "gitlab": {"Guest", "Developer", "no access"}}[fc.name]
			if _, reply = say("bob", "/apply", true); !strings.HasPrefix(reply, "@bob `/apply` refused:") ||
				!strings.Contains(reply, "permission on "+repo+" is "+words.read+", /apply needs "+words.write+" (the apply role)") {
				t.Errorf("reply to /apply: %q", reply)
			}
			if _, reply = say("mallory", "/plan", true); !strings.HasPrefix(reply, "@mallory `/plan` refused: ") || !strings.Contains(reply, "permission on "+repo+" is "+words.none+",") {
				t.Errorf("reply to /plan by a stranger: %q", reply)
			}
			statuses := len(planStatuses(emu.PRState(repo, n), head))
			c, _ := say("bob", "/plan", false)
			deadline := time.Now().Add(30 * time.Second)
			for len(planStatuses(emu.PRState(repo, n), head)) < statuses+2 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			pr := emu.PRState(repo, n)
			if got := len(planStatuses(pr, head)); got != statuses+2 {
				t.Fatalf("/plan: %d statuses, want %d (pending and the new result)", got, statuses+2)
			}
			for _, cm := range pr.Comments {
				if cm.ID == c.ID && strings.Join(cm.Reactions, ",") != "eyes" {
					t.Errorf("/plan was not acknowledged: reactions %v", cm.Reactions)
				}
			}
			if len(planComments(pr)) != 1 {
				t.Errorf("/plan added a second plan comment")
			}

			// Not commands, or kubeplan's own words: no reaction, no reply.
			count := len(pr.Comments)
			lgtm, _ := say("bob", "LGTM, ship it", false)
			own, _ := say(bot, "/plan", false)
			pr = emu.PRState(repo, n)
			if len(pr.Comments) != count+2 {
				t.Errorf("kubeplan answered a non-command or itself: %d comments, want %d", len(pr.Comments), count+2)
			}
			for _, cm := range pr.Comments {
				if (cm.ID == lgtm.ID || cm.ID == own.ID) && len(cm.Reactions) > 0 {
					t.Errorf("comment %q got reactions %v", cm.Body, cm.Reactions)
				}
			}
		})
	}
}

// As a GitHub App: installation tokens are minted for the event's installation and reused, and
// kubeplan recognises its comments as "<app slug>[bot]". Repositories outside the allowlist are
// not planned.
func TestGitHubAppAndRepositoryAllowlist(t *testing.T) {
	emu := forgeemu.New(token, "kubeplan[bot]")
	defer emu.Close()
	key := emu.EnableGitHubApp(4242)
	ns := unique("app-auth")
	kubectl(t, "", "create", "namespace", ns)
	files := map[string]string{".kubeplan.yaml": fmt.Sprintf(kubeplanYAML, ns), "apps/web/deploy.yaml": deployment("nginx:1.27")}
	repo, other := "acme/app-auth", "elsewhere/app-auth"
	base := emu.CreateRepo(repo, files)
	n := emu.OpenPR(repo, "alice", "bump", base, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28")})
	otherBase := emu.CreateRepo(other, files)
	m := emu.OpenPR(other, "alice", "bump", otherBase, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28")})

	e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(c *config.Config) {
		c.GitHub.Token, c.GitHub.AppID, c.GitHub.PrivateKey = "", 4242, key
		c.Repositories = []string{"acme/*"}
	})
	send := func(repo string, n int, action, delivery string) {
		e.answer(forgeemu.SendGitHub(e.url+"/webhooks/github", secret, "pull_request", delivery, emu.GitHubPullRequestEvent(repo, n, action, "alice")))
	}
	send(other, m, "opened", "other-1")
	send(repo, n, "opened", "app-1")
	e.waitStatus(repo, n, emu.PRState(repo, n).HeadSHA)
	head := emu.Push(repo, n, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.29")})
	send(repo, n, "synchronize", "app-2")
	pr, st := e.waitStatus(repo, n, head)
	if st.State != forge.Success {
		t.Fatalf("status %+v", st)
	}
	var ours int
	for _, c := range pr.Comments {
		if c.Author == "kubeplan[bot]" {
			ours++
		}
	}
	if ours != 1 {
		t.Fatalf("%d comments by kubeplan[bot] after two plans, want 1 (updated in place)", ours)
	}
	if got := emu.TokensMinted(forgeemu.InstallationID); got != 1 {
		t.Errorf("%d installation tokens minted, want 1 (reused until near expiry)", got)
	}
	if o := emu.PRState(other, m); len(o.Comments) != 0 || len(o.Statuses) != 0 {
		t.Errorf("a repository outside the allowlist was planned: %d comments, %d statuses", len(o.Comments), len(o.Statuses))
	}
}

// A server forgets finished jobs and delivery ids older than its retention when it starts
// (and hourly after); work still queued stays. The audit history goes by history.retention
// alone: an entry older than the queue's retention stays, one older than the history's goes,
// and the kept chain still verifies.
func TestServerPrunesOldFinishedWorkAtStart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.db")
	q, err := store.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range []string{"old-1", "old-2"} {
		if _, err := q.Enqueue(ctx, d, store.Job{Key: "github:acme/x#" + d, Kind: "event", Payload: []byte(`{}`)}, false); err != nil {
			t.Fatal(err)
		}
		j, err := q.Claim(ctx)
		if err != nil || j == nil {
			t.Fatalf("claim: %v %v", j, err)
		}
		if err := q.Done(ctx, j.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, age := range []time.Duration{10 * 24 * time.Hour, 8 * 24 * time.Hour} {
		if _, err := q.State().AppendHistory(ctx, history.Entry{At: time.Now().Add(-age), Kind: history.Apply, Forge: "github", Repo: "acme/x",
			Project: "web", Cluster: "prod", State: "succeeded", Summary: fmt.Sprintf("%s old", age)}); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	// Eight days pass (written straight into the file: the store takes its clock from the OS).
	db, err := sql.Open("sqlite", state)
	if err != nil {
		t.Fatal(err)
	}
	eightDays := (8 * 24 * time.Hour).Milliseconds()
	for _, stmt := range []string{`UPDATE jobs SET updated_at = updated_at - ?`, `UPDATE deliveries SET received_at = received_at - ?`} {
		if _, err := db.Exec(stmt, eightDays); err != nil {
			t.Fatal(err)
		}
	}
	count := func(table string) (n int) {
		if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	start(t, emu, state, true, func(c *config.Config) { c.History.Retention.Duration = 9 * 24 * time.Hour })
	for deadline := time.Now().Add(30 * time.Second); count("jobs")+count("deliveries") > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs and %d delivery ids older than the retention are still kept", count("jobs"), count("deliveries"))
		}
	}
	waitFor(t, "history pruned by history.retention", func() bool { return count("history") < 2 })
	db.Close()
	q, err = store.Open(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	kept, err := q.State().History(ctx, history.Filter{})
	if err != nil || len(kept) != 1 || kept[0].Seq != 2 {
		t.Fatalf("history after pruning: %+v %v; want entry 2 (8 days old) kept", kept, err)
	}
	res, err := q.State().VerifyHistory(ctx)
	if err != nil || !res.OK() || res.PrunedThrough != 1 || res.Checked != 1 {
		t.Fatalf("the pruned history does not verify: %+v %v", res, err)
	}
}
