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

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/manifest"
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
	e := start(t, emu, t.TempDir()+"/state.db", true, func(c *config.Config) {
		c.Drift.Interval.Duration = 100 * time.Millisecond
		c.Drift.Repositories = []string{"github:" + repo}
		c.Drift.SlackWebhookURL = slack.URL
	})

	e.waitMetrics(`kubeplan_drift_objects{cluster="prod",project="shop",repository="github:` + repo + `"} 1`)
	// Let it check a few times more: the same drift is told once.
	checks := regexp.MustCompile(`kubeplan_drift_checks_total\{outcome="drift"\} (\d+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := checks.FindStringSubmatch(get(t, e.url+"/metrics"))
		if n, _ := strconv.Atoi(m[1]); n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fewer than 3 drift checks within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	deadline = time.Now().Add(60 * time.Second)
	for {
		issues = emu.Issues(repo)
		if len(issues) == 1 && issues[0].State == "closed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the drift issue was not closed within 60s: %+v", issues)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(issues[0].Comments); n != 1 || !strings.Contains(issues[0].Comments[0].Body, "Drift is gone") {
		t.Errorf("closing comments: %d, want the note", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 2 || !strings.Contains(posts[1], "resolved") {
		t.Errorf("Slack posts after the fix: %q; want the drift told once and its resolution once", posts)
	}
}
