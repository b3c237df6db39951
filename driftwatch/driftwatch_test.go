package driftwatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/archive"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/drift"
	"github.com/kubeplan/kubeplan/driftwatch"
	ghforge "github.com/kubeplan/kubeplan/forge/github"
	glforge "github.com/kubeplan/kubeplan/forge/gitlab"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/internal/pgtest"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/store"
)

var testCluster *kubetest.Cluster

func TestMain(m *testing.M) { os.Exit(kubetest.RunWithCluster(m, "test", &testCluster)) }

const token = "emu-token"

var seq atomic.Int64

var deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// fixture is one repository on the emulator whose project "shop" kubeplan applied to its own
// namespace, and a Slack receiver.
type fixture struct {
	t     *testing.T
	emu   *forgeemu.Emulator
	forge string // github or gitlab
	repo  string
	ns    string
	slack *receiver
	docs  string
}

// receiver is a Slack-compatible incoming webhook that keeps what it was posted.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	texts []string
}

func (r *receiver) posts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.texts...)
}

func newFixture(t *testing.T, drift string) *fixture { return newFixtureOn(t, "github", drift) }

// newFixtureOn is newFixture with the repository on forge (github or gitlab).
func newFixtureOn(t *testing.T, forge, drift string) *fixture {
	t.Helper()
	n := seq.Add(1)
	f := &fixture{t: t, emu: forgeemu.New(token, "kubeplan-bot"), forge: forge, repo: fmt.Sprintf("acme/shop-%d-%d", os.Getpid(), n),
		ns: fmt.Sprintf("watch-%d-%d", os.Getpid(), n), slack: &receiver{}}
	t.Cleanup(f.emu.Close)
	f.slack.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Text string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		f.slack.mu.Lock()
		f.slack.texts = append(f.slack.texts, body.Text)
		f.slack.mu.Unlock()
	}))
	t.Cleanup(f.slack.Close)
	if _, err := testCluster.Kubectl(context.Background(), "", "create", "namespace", f.ns); err != nil {
		t.Fatal(err)
	}
	f.docs = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.example/web:1}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue}
`
	f.emu.CreateRepo(f.repo, map[string]string{
		".kubeplan.yaml": fmt.Sprintf("projects:\n- name: shop\n  dir: app\n  namespace: %s\n  apply: {force: true}\n%s", f.ns, drift),
		"app/app.yaml":   f.docs,
	})
	f.apply()
	return f
}

// apply rolls git out as kubeplan does after a merge (and takes every field back).
func (f *fixture) apply() {
	f.t.Helper()
	us, err := kubetest.Objects(f.docs)
	if err != nil {
		f.t.Fatal(err)
	}
	objs := make([]manifest.Object, len(us))
	for i, u := range us {
		objs[i] = manifest.Object{Unstructured: u, Source: "app/app.yaml"}
	}
	r, err := applier.New(applier.Options{}).Apply(context.Background(), f.client(), applier.Request{Project: "shop", Namespace: f.ns,
		Objects: objs, Prune: true, Force: true, Repository: f.forge + ":" + f.repo})
	if err != nil || r.Failed() {
		f.t.Fatalf("apply: %v %+v", err, r)
	}
}

func (f *fixture) client() *cluster.Client {
	c, err := testCluster.Client(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// scale changes the Deployment's replicas as `kubectl edit` does.
func (f *fixture) scale(replicas int64) {
	f.t.Helper()
	res := f.client().Dynamic.Resource(deployments).Namespace(f.ns)
	u, err := res.Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	_ = unstructured.SetNestedField(u.Object, replicas, "spec", "replicas")
	if _, err := res.Update(context.Background(), u, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) replicas() int64 {
	f.t.Helper()
	u, err := f.client().Dynamic.Resource(deployments).Namespace(f.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	n, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	return n
}

// watcher is one replica checking f's repository on the store at state.
func (f *fixture) watcher(state *store.State, every time.Duration, allowRevert bool, checks *atomic.Int32) *driftwatch.Watcher {
	f.t.Helper()
	reg, err := cluster.NewRegistry("test", cluster.Target{Name: "test", Kubeconfig: testCluster.Kubeconfig, Context: "test"})
	if err != nil {
		f.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return &driftwatch.Watcher{
		Repositories: []driftwatch.Repository{{Forge: f.forge, Name: f.repo}},
		Interval:     every, Lease: time.Minute, Holder: fmt.Sprintf("replica-%d", seq.Add(1)), AllowRevert: allowRevert,
		Forges: func(ctx context.Context, r driftwatch.Repository) (driftwatch.Forge, error) {
			if f.forge == "gitlab" {
				return glforge.New(glforge.Config{BaseURL: f.emu.GitLabAPI(), Token: token})
			}
			return ghforge.New(ghforge.Config{BaseURL: f.emu.GitHubAPI(), Token: token}, 0)
		},
		Checkouts: archive.NewCache(f.t.TempDir(), 64<<20),
		Clusters:  cluster.NewPool(reg, cluster.DefaultTuning()),
		Planner:   planner.New(planner.Options{}),
		Applier:   applier.New(applier.Options{}),
		State:     state,
		Notifiers: []driftwatch.Notifier{&driftwatch.Slack{URL: f.slack.URL}},
		Observe: func(_, _, _, outcome string, _ int, _ time.Duration) {
			if checks != nil {
				checks.Add(1)
			}
		},
		Log: log,
	}
}

func openState(t *testing.T, location string) *store.State {
	t.Helper()
	q, err := store.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q.State()
}

func (f *fixture) checkDue(w *driftwatch.Watcher) {
	f.t.Helper()
	if _, err := w.CheckDue(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// A scheduled check finds a field changed by hand and tells Slack who changed it; the same
// drift seen again tells nobody; drift put right is told as resolved.
func TestDriftIsNotifiedOnceAndItsEndToo(t *testing.T) {
	f := newFixture(t, "")
	state := openState(t, filepath.Join(t.TempDir(), "state.db"))
	w := f.watcher(state, time.Millisecond, false, nil)

	f.checkDue(w)
	if p := f.slack.posts(); len(p) != 0 {
		t.Fatalf("no drift, yet Slack was told: %q", p)
	}

	f.scale(5)
	f.checkDue(w)
	posts := f.slack.posts()
	if len(posts) != 1 {
		t.Fatalf("posts after the hand change: %q; want 1", posts)
	}
	for _, want := range []string{"Drift on cluster *test*, project *shop*", "1 changed, 0 missing, 0 extra",
		`Deployment ` + f.ns + `/web: .spec.replicas changed by "kubectl-edit" (Update)`} {
		if !strings.Contains(posts[0], want) {
			t.Errorf("message lacks %q:\n%s", want, posts[0])
		}
	}
	rec, ok, err := state.DriftOf(context.Background(), "github:"+f.repo, store.Target{Project: "shop", Cluster: "test"})
	if err != nil || !ok || rec.Signature == "" || rec.Notified != rec.Signature || rec.Changed != 1 || !strings.Contains(rec.Report, `"kubectl-edit"`) ||
		rec.SHA != f.emu.DefaultHead(f.repo) {
		t.Fatalf("drift record: %+v %v %v", rec, ok, err)
	}

	f.checkDue(w)
	if p := f.slack.posts(); len(p) != 1 {
		t.Fatalf("the same drift was told again: %q", p[1:])
	}

	f.apply()
	f.checkDue(w)
	posts = f.slack.posts()
	if len(posts) != 2 || !strings.Contains(posts[1], "Drift resolved on cluster *test*, project *shop*") {
		t.Fatalf("posts after the fix: %q; want a second one saying resolved", posts)
	}
	if rec, _, _ := state.DriftOf(context.Background(), "github:"+f.repo, store.Target{Project: "shop", Cluster: "test"}); rec.Signature != "" || rec.Notified != "" {
		t.Fatalf("after the fix: %+v", rec)
	}

	// Every check is in the history: the first (clean); the drift when it appeared, naming who
	// changed what; the same drift seen again, without objects (an object's timeline shows
	// where its drift began and ended, not every check between); and its end.
	h := historyOf(t, state)
	var got []string
	for _, e := range h {
		s := string(e.Kind) + " " + e.State
		if strings.HasPrefix(e.Summary, driftwatch.RepeatCheck) {
			s += fmt.Sprintf(" again (%d objects)", len(e.Objects))
		}
		got = append(got, s)
	}
	if strings.Join(got, ", ") != "drift_check clean, drift_check drifted, drift_check drifted again (0 objects), drift_check clean" {
		t.Fatalf("history: %s; want every check, the drift's objects once", strings.Join(got, ", "))
	}
	drifted := h[1]
	if drifted.Actor != "kubeplan" || drifted.Forge != "github" || drifted.Repo != f.repo || drifted.Project != "shop" || drifted.Cluster != "test" ||
		drifted.SHA != f.emu.DefaultHead(f.repo) || drifted.Number != 0 || !strings.Contains(drifted.Summary, "1 changed") ||
		!strings.Contains(causes(drifted), "Deployment "+f.ns+"/web changed: .spec.replicas changed by \"kubectl-edit\" (Update)") ||
		!strings.Contains(drifted.Objects[0].Diff, "replicas: 5") {
		t.Fatalf("drift entry: %+v\n%s", drifted, causes(drifted))
	}
	if len(h[3].Objects) != 0 || !strings.Contains(h[3].Summary, "no drift") {
		t.Errorf("end-of-drift entry: %+v", h[3])
	}
}

// revert re-applies git where the server allows it and no pull request holds the project
// locked, and records it in the apply history; otherwise the drift is only reported, saying why.
func TestRevert(t *testing.T) {
	target := store.Target{Project: "shop", Cluster: "test"}
	cases := []struct {
		name        string
		allowRevert bool
		locked      bool
		reverted    bool
		says        string
	}{
		{name: "reverted", allowRevert: true, reverted: true, says: "Revert: reverted 1 object(s): succeeded"},
		{name: "locked", allowRevert: true, locked: true, says: "Revert: not reverted: #7 (alice) holds shop on test locked"},
		{name: "not allowed", says: "Revert: not reverted: this server does not let repositories choose revert (drift.allowRevert)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "  drift: {mode: revert}\n")
			state := openState(t, filepath.Join(t.TempDir(), "state.db"))
			repo := "github:" + f.repo
			if tc.locked {
				if _, ok, err := state.Acquire(context.Background(), store.Lock{Repo: repo, Target: target, PR: repo + "#7", Number: 7, Holder: "alice"}); err != nil || !ok {
					t.Fatal(err)
				}
			}
			w := f.watcher(state, time.Millisecond, tc.allowRevert, nil)
			f.scale(5)
			f.checkDue(w)

			if got, want := f.replicas(), map[bool]int64{true: 2, false: 5}[tc.reverted]; got != want {
				t.Errorf("replicas %d after the check; want %d", got, want)
			}
			posts := f.slack.posts()
			if len(posts) != 1 || !strings.Contains(posts[0], tc.says) || !strings.Contains(posts[0], `changed by "kubectl-edit"`) {
				t.Fatalf("posts: %q; want one naming kubectl-edit and saying %q", posts, tc.says)
			}
			applies, err := state.Applies(context.Background(), repo)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.reverted {
				if len(applies) != 0 {
					t.Fatalf("applies recorded: %+v; want none", applies)
				}
				return
			}
			if len(applies) != 1 || applies[0].Trigger != store.DriftRevert || applies[0].State != store.ApplySucceeded || applies[0].Target != target ||
				applies[0].Actor != driftwatch.Actor || applies[0].SHA != f.emu.DefaultHead(f.repo) {
				t.Fatalf("apply history: %+v; want one succeeded drift revert", applies)
			}
			// The history has the revert, by kubeplan, with what became of the object and the
			// diff it put back, then the check that saw the drift and says it was reverted.
			h := historyOf(t, state)
			if got := kinds(h); got != "revert succeeded, drift_check drifted" {
				t.Fatalf("history: %s; want the revert and the check", got)
			}
			rev := h[0]
			if rev.Actor != "kubeplan" || rev.SHA != f.emu.DefaultHead(f.repo) || len(rev.Objects) != 1 ||
				rev.Objects[0].Object.String() != "Deployment "+f.ns+"/web" || rev.Objects[0].Outcome != "configured" || !strings.Contains(rev.Objects[0].Diff, "replicas") {
				t.Fatalf("revert entry: %+v", rev)
			}
			if !strings.Contains(h[1].Summary, "reverted 1 object(s)") || !strings.Contains(causes(h[1]), `"kubectl-edit"`) {
				t.Fatalf("check entry: %+v", h[1])
			}
			// Reverted, the next check finds no drift and says it is resolved.
			f.checkDue(w)
			if posts := f.slack.posts(); len(posts) != 2 || !strings.Contains(posts[1], "Drift resolved") {
				t.Fatalf("posts after the revert: %q", posts)
			}
		})
	}
}

// Two replicas sharing one PostgreSQL database run a due check once between them.
func TestReplicasRunOneCheckBetweenThem(t *testing.T) {
	dsn := pgtest.Database(t)
	f := newFixture(t, "")
	f.scale(5)
	var checks atomic.Int32
	replicas := []*driftwatch.Watcher{
		f.watcher(openState(t, dsn), time.Hour, false, &checks),
		f.watcher(openState(t, dsn), time.Hour, false, &checks),
	}
	var wg sync.WaitGroup
	for _, w := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.CheckDue(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := checks.Load(); n != 1 {
		t.Fatalf("%d checks ran; want exactly 1 between the two replicas", n)
	}
	if posts := f.slack.posts(); len(posts) != 1 {
		t.Fatalf("posts: %q; want exactly 1", posts)
	}
	// Within the interval neither runs it again.
	for _, w := range replicas {
		f.checkDue(w)
	}
	if n := checks.Load(); n != 1 {
		t.Fatalf("%d checks within the interval; want still 1", n)
	}
}

// The webhook URL is the credential: a failed post names the project and cluster, never the URL.
func TestSlackErrorsKeepTheURLOut(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) }))
	t.Cleanup(failing.Close)
	n := driftwatch.Notice{Repository: "github:acme/shop", Project: "shop", Cluster: "prod", Report: &drift.Report{}, Previous: "abc"}
	for _, u := range []string{failing.URL + "/services/secret-part", "http://127.0.0.1:1/services/secret-part"} {
		err := (&driftwatch.Slack{URL: u}).Notify(context.Background(), n)
		if err == nil || strings.Contains(err.Error(), "secret-part") || !strings.Contains(err.Error(), "shop on prod") {
			t.Errorf("error %v; want one naming shop on prod without the URL", err)
		}
	}
}
