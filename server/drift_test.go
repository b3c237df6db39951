package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/store"
)

// kubeplan serve checks the configured repository's default branch on its schedule: a field
// changed by hand is told to Slack once, with who changed it, however often it is checked, and
// the repository gets one drift issue, closed once the field is put back.
func TestServeChecksForDriftOnSchedule(t *testing.T) {
	ns := fmt.Sprintf("drift-serve-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	repo := "acme/" + ns
	kubectl(t, "", "create", "namespace", ns)
	docs := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n"
	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	emu.CreateRepo(repo, map[string]string{
		".kubeplan.yaml": fmt.Sprintf("projects:\n- {name: shop, dir: app, namespace: %s}\n", ns),
		"app/cm.yaml":    docs,
	})
	us, err := kubetest.Objects(docs)
	if err != nil {
		t.Fatal(err)
	}
	client, err := prod.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := applier.New(applier.Options{}).Apply(context.Background(), client, applier.Request{Project: "shop", Namespace: ns,
		Objects: []manifest.Object{{Unstructured: us[0], Source: "app/cm.yaml"}}, Repository: "github:" + repo}); err != nil || r.Failed() {
		t.Fatalf("apply: %v %+v", err, r)
	}
	kubectl(t, "", "-n", ns, "patch", "configmap", "settings", "--type=merge", "-p", `{"data":{"color":"red"}}`)

	var mu sync.Mutex
	var posts []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Text string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		posts = append(posts, body.Text)
		mu.Unlock()
	}))
	t.Cleanup(slack.Close)
	state := t.TempDir() + "/state.db"
	e := start(t, emu, state, true, func(c *config.Config) {
		c.Drift.Interval.Duration = 100 * time.Millisecond
		c.Drift.Repositories = []string{"github:" + repo}
		c.Drift.SlackWebhookURL = slack.URL
	})

	e.waitMetrics(`kubeplan_drift_objects{cluster="prod",project="shop",repository="github:` + repo + `"} 1`)
	// Let it check a few times more: the same drift is told once.
	checks := regexp.MustCompile(`kubeplan_drift_checks_total\{outcome="drift"\} (\d+)`)
	waitFor(t, "third drift check", func() bool {
		m := checks.FindStringSubmatch(get(t, e.url+"/metrics"))
		n, _ := strconv.Atoi(m[1])
		return n >= 3
	})
	mu.Lock()
	if len(posts) != 1 || !strings.Contains(posts[0], `ConfigMap `+ns+`/settings: .data.color changed by "kubectl-patch" (Update)`) {
		t.Fatalf("Slack posts: %q; want one naming kubectl-patch", posts)
	}
	mu.Unlock()
	issues := emu.Issues(repo)
	if len(issues) != 1 || issues[0].State != "open" || issues[0].Title != "kubeplan: drift on prod / shop" ||
		!strings.Contains(issues[0].Body, `changed by "kubectl-patch"`) {
		t.Fatalf("drift issues: %+v; want one open issue naming kubectl-patch", issues)
	}

	// Put the field back: the next check finds no drift, says so once and closes the issue.
	kubectl(t, "", "-n", ns, "patch", "configmap", "settings", "--type=merge", "-p", `{"data":{"color":"blue"}}`)
	waitFor(t, "closed drift issue", func() bool {
		issues = emu.Issues(repo)
		return len(issues) == 1 && issues[0].State == "closed"
	})
	if n := len(issues[0].Comments); n != 1 || !strings.Contains(issues[0].Comments[0].Body, "Drift is gone") {
		t.Errorf("closing comments: %d, want the note", n)
	}
	mu.Lock()
	if len(posts) != 2 || !strings.Contains(posts[1], "resolved") {
		t.Errorf("Slack posts after the fix: %q; want the drift told once and its resolution once", posts)
	}
	mu.Unlock()

	// The history has every check; those that differ from the one before are two: the drift,
	// naming who changed the field, on its issue; and its end, on the issue it closed.
	e.stop()
	all := readHistory(t, state)
	h := withoutRepeats(t, all)
	if len(all) < 3 || len(h) != 2 || h[0].Kind != history.DriftCheck || h[0].State != "drifted" || h[1].Kind != history.DriftCheck || h[1].State != "clean" {
		t.Fatalf("history: %+v; want the drift and its end", h)
	}
	for _, c := range h {
		if c.Actor != "kubeplan" || !c.Issue || c.Number != issues[0].Number || c.Repo != repo || c.Project != "shop" || c.Cluster != "prod" {
			t.Errorf("check entry: %+v; want kubeplan's, on issue #%d", c, issues[0].Number)
		}
	}
	if o, ok := object(h[0], "ConfigMap "+ns+"/settings"); !ok || o.Outcome != "changed" || len(o.Causes) != 1 ||
		!strings.Contains(o.Causes[0], `.data.color changed by "kubectl-patch" (Update)`) {
		t.Errorf("drifted object: %+v %v; want changed by kubectl-patch", o, ok)
	}
}

// `/apply` commented on the drift issue, through the forges' webhooks: a person's issue that
// copies the marker is ignored, someone without the apply role is refused, and someone with
// it gets git back on the cluster, recorded with them as the actor, an answer, and the issue
// closed.
func TestServeAppliesFromTheDriftIssue(t *testing.T) {
	for _, forgeName := range []string{"github", "gitlab"} {
		t.Run(forgeName, func(t *testing.T) {
			ns := fmt.Sprintf("drift-apply-%s-%d-%d", forgeName, os.Getpid(), time.Now().UnixNano()%1e6)
			repo := "acme/" + ns
			kubectl(t, "", "create", "namespace", ns)
			docs := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n"
			emu := forgeemu.New(token, bot)
			t.Cleanup(emu.Close)
			emu.CreateRepo(repo, map[string]string{
				// force: the field kubectl-patch changed is owned by it now (docs/drift.md).
				".kubeplan.yaml": fmt.Sprintf("projects:\n- {name: shop, dir: app, namespace: %s, apply: {force: true}}\n", ns),
				"app/cm.yaml":    docs,
			})
			emu.SetPermission(repo, "bob", forge.PermWrite)
			emu.SetPermission(repo, "mallory", forge.PermRead)
			us, err := kubetest.Objects(docs)
			if err != nil {
				t.Fatal(err)
			}
			client, err := prod.Client(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if r, err := applier.New(applier.Options{}).Apply(context.Background(), client, applier.Request{Project: "shop", Namespace: ns,
				Objects: []manifest.Object{{Unstructured: us[0], Source: "app/cm.yaml"}}, Repository: forgeName + ":" + repo}); err != nil || r.Failed() {
				t.Fatalf("apply: %v %+v", err, r)
			}
			kubectl(t, "", "-n", ns, "patch", "configmap", "settings", "--type=merge", "-p", `{"data":{"color":"red"}}`)
			color := func() string {
				cm, err := client.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ns).Get(context.Background(), "settings", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				c, _, _ := unstructured.NestedString(cm.Object, "data", "color")
				return c
			}
			state := t.TempDir() + "/state.db"
			e := start(t, emu, state, true, func(c *config.Config) {
				c.Drift.Interval.Duration = time.Hour // one check at start; the rest is /apply's
				c.Drift.Repositories = []string{forgeName + ":" + repo}
			})
			var number int
			waitFor(t, "the drift issue", func() bool {
				is := emu.Issues(repo)
				if len(is) == 1 && is[0].State == "open" {
					number = is[0].Number
					return true
				}
				return false
			})
			deliveries := 0
			comment := func(issue int, who, body string) {
				t.Helper()
				c := emu.AddIssueComment(repo, issue, who, body)
				deliveries++
				delivery := fmt.Sprintf("%s-issue-%d", ns, deliveries)
				var code int
				if forgeName == "github" {
					code = e.answer(forgeemu.SendGitHub(e.url+"/webhooks/github", secret, "issue_comment", delivery, emu.GitHubIssueCommentEvent(repo, issue, c)))
				} else {
					code = e.answer(forgeemu.SendGitLab(e.url+"/webhooks/gitlab", secret, "Note Hook", delivery, emu.GitLabIssueNoteEvent(repo, issue, c)))
				}
				if code != http.StatusAccepted {
					t.Fatalf("%s's comment: webhook answered %d, want 202", who, code)
				}
			}
			answers := func(issue int) []string {
				var out []string
				for _, is := range emu.Issues(repo) {
					for _, c := range is.Comments {
						if is.Number == issue && c.Author == bot {
							out = append(out, c.Body)
						}
					}
				}
				return out
			}

			// A person's issue with kubeplan's marker at the top: queued (the receiver cannot
			// tell), then ignored, even for someone with the role.
			forged := emu.OpenIssue(repo, "mallory", "kubeplan: drift on prod / shop",
				comments.DriftIssueMarker(repo, "shop", "prod")+"\nplease apply")
			comment(forged, "bob", "/apply")
			e.waitMetrics(`kubeplan_jobs_total{outcome="done"} 1`)
			if a := answers(forged); len(a) != 0 || color() != "red" {
				t.Fatalf("forged issue: answers %q, color %s; want nothing done", a, color())
			}
			// No apply role: refused.
			comment(number, "mallory", "/apply")
			waitFor(t, "the refusal", func() bool { return len(answers(number)) == 1 })
			if a := answers(number); !strings.Contains(a[0], "@mallory `/apply` refused") || color() != "red" {
				t.Fatalf("answer to mallory: %q, color %s", a, color())
			}
			// The apply role: git is back and the issue closed.
			comment(number, "bob", "/apply")
			waitFor(t, "the drift issue closed", func() bool {
				for _, is := range emu.Issues(repo) {
					if is.Number == number {
						return is.State == "closed"
					}
				}
				return false
			})
			if color() != "blue" {
				t.Fatalf("color %s after /apply; want git's blue", color())
			}
			a := answers(number)
			if len(a) != 3 || !strings.HasPrefix(a[1], "@bob ✅ applied git at") || !strings.Contains(a[1], "ConfigMap "+ns+"/settings") ||
				!strings.Contains(a[2], "Drift is gone") {
				t.Fatalf("answers: %q; want the refusal, the outcome, the closing note", a)
			}
			e.stop()
			q, err := store.Open(context.Background(), state)
			if err != nil {
				t.Fatal(err)
			}
			applies, err := q.State().Applies(context.Background(), forgeName+":"+repo)
			if err != nil || len(applies) != 1 || applies[0].Trigger != store.DriftApply || applies[0].Actor != "bob" || applies[0].State != store.ApplySucceeded {
				t.Fatalf("apply history: %+v, %v; want one drift_apply by bob", applies, err)
			}
			q.Close()

			// The history: the drift; mallory's refusal and bob's apply on the issue; the drift gone.
			var got []string
			h := withoutRepeats(t, readHistory(t, state))
			for _, x := range h {
				got = append(got, fmt.Sprintf("%s %s by %s on #%d", x.Kind, x.State, x.Actor, x.Number))
			}
			want := []string{"drift_check drifted by kubeplan on #%d", "drift_apply refused by mallory on #%d", "drift_apply succeeded by bob on #%d", "drift_check clean by kubeplan on #%d"}
			for i := range want {
				want[i] = fmt.Sprintf(want[i], number)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if o, ok := object(h[2], "ConfigMap "+ns+"/settings"); !h[2].Issue || !ok || o.Outcome != "configured" || !strings.Contains(o.Diff, "color: red") {
				t.Errorf("bob's drift_apply: %+v", h[2])
			}
		})
	}
}
