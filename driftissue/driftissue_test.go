package driftissue_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/drift"
	"github.com/kubeplan/kubeplan/driftissue"
	"github.com/kubeplan/kubeplan/driftreport"
	ghforge "github.com/kubeplan/kubeplan/forge/github"
	glforge "github.com/kubeplan/kubeplan/forge/gitlab"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/planner"
)

var testCluster *kubetest.Cluster

func TestMain(m *testing.M) { os.Exit(kubetest.RunWithCluster(m, "drift", &testCluster)) }

var seq atomic.Int64

const (
	token = "emu-token-drift-issue"
	repo  = "acme/platform"
	docs  = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
---
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: git-value-not-shown}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue}
`
)

// secretValues are the Secret's values in every spelling: none may reach the forge.
var secretValues = []string{"git-value-not-shown", "hand-value-not-shown", "aGFuZC12YWx1ZS1ub3Qtc2hvd24", "Z2l0LXZhbHVlLW5vdC1zaG93bg"}

func connect(t *testing.T) *cluster.Client {
	t.Helper()
	c, err := testCluster.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func objects(t *testing.T) []manifest.Object {
	t.Helper()
	us, err := kubetest.Objects(docs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]manifest.Object, len(us))
	for i, u := range us {
		out[i] = manifest.Object{Unstructured: u, Source: fmt.Sprintf("shop/app.yaml#%d", i+1)}
	}
	return out
}

// apply applies git as kubeplan does; force takes fields back from whoever changed them by hand.
func apply(t *testing.T, ns string, force bool) {
	t.Helper()
	r, err := applier.New(applier.Options{}).Apply(context.Background(), connect(t), applier.Request{Project: "shop", Namespace: ns, Prune: true, Force: force, Objects: objects(t)})
	if err != nil || r.Failed() {
		t.Fatalf("apply: %v %+v", err, r)
	}
}

func check(t *testing.T, ns, commit string) *driftreport.Report {
	t.Helper()
	r, err := drift.Check(context.Background(), planner.New(planner.Options{}), connect(t),
		planner.Request{Project: "shop", Namespace: ns, Objects: objects(t), CompareSecretValues: true}, drift.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	r.Commit = commit
	return r
}

// edit changes a live object with an Update as field manager, as kubectl edit does.
func edit(t *testing.T, resource, ns, name, manager string, change func(u *unstructured.Unstructured)) {
	t.Helper()
	res := connect(t).Dynamic.Resource(schema.GroupVersionResource{Group: map[string]string{"deployments": "apps"}[resource], Version: "v1", Resource: resource}).Namespace(ns)
	u, err := res.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change(u)
	if _, err := res.Update(context.Background(), u, metav1.UpdateOptions{FieldManager: manager}); err != nil {
		t.Fatal(err)
	}
}

// reports are three checks of one project on a real apiserver: drift by hand, more drift, and
// git put back.
type reports struct{ drifted, more, gone *driftreport.Report }

func drifts(t *testing.T) reports {
	ns := fmt.Sprintf("shop-%d-%d", os.Getpid(), seq.Add(1))
	if _, err := testCluster.Kubectl(context.Background(), "", "create", "namespace", ns); err != nil {
		t.Fatal(err)
	}
	apply(t, ns, false)
	edit(t, "deployments", ns, "web", "kubectl-edit", func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, int64(7), "spec", "replicas")
	})
	edit(t, "secrets", ns, "db", "kubectl-edit", func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, "aGFuZC12YWx1ZS1ub3Qtc2hvd24=", "data", "password") // hand-value-not-shown
	})
	var out reports
	out.drifted = check(t, ns, "1111111111111111111111111111111111111111")
	if c := out.drifted.Counts(); c.Changed != 2 || c.Total() != 2 {
		t.Fatalf("first check: %+v", c)
	}
	err := connect(t).Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ns).Delete(context.Background(), "settings", metav1.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out.more = check(t, ns, "2222222222222222222222222222222222222222")
	if c := out.more.Counts(); c.Changed != 2 || c.Missing != 1 {
		t.Fatalf("second check: %+v", c)
	}
	apply(t, ns, true)
	out.gone = check(t, ns, "3333333333333333333333333333333333333333")
	if out.gone.Drifted() {
		t.Fatalf("after applying git again: %s", out.gone.Summary())
	}
	return out
}

var forges = []struct {
	name    string
	connect func(t *testing.T, emu *forgeemu.Emulator) driftissue.Forge
}{
	{"github", func(t *testing.T, emu *forgeemu.Emulator) driftissue.Forge {
		c, err := ghforge.New(ghforge.Config{BaseURL: emu.GitHubAPI(), Token: token}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{"gitlab", func(t *testing.T, emu *forgeemu.Emulator) driftissue.Forge {
		c, err := glforge.New(glforge.Config{BaseURL: emu.GitLabAPI(), Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
}

// On both forges: drift opens one issue with the per-object diffs and who changed what; more
// drift edits that issue; the same drift again writes nothing; drift gone closes it with a
// note; a Secret's value reaches the forge nowhere.
func TestIssueFollowsTheDrift(t *testing.T) {
	ctx := context.Background()
	rs := drifts(t)
	closedAt := time.Date(2026, 7, 2, 8, 30, 0, 0, time.UTC)
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			emu := forgeemu.New(token, "kubeplan-bot")
			t.Cleanup(emu.Close)
			emu.CreateRepo(repo, map[string]string{"shop/app.yaml": docs})
			n := &driftissue.Notifier{Forge: fc.connect(t, emu), Now: func() time.Time { return closedAt }}
			kubeplans := func() []forgeemu.Issue {
				var out []forgeemu.Issue
				for _, is := range emu.Issues(repo) {
					if is.Author == "kubeplan-bot" {
						out = append(out, is)
					}
				}
				return out
			}
			noSecrets := func() {
				t.Helper()
				for _, is := range emu.Issues(repo) {
					all := is.Title + is.Body
					for _, c := range is.Comments {
						all += c.Body
					}
					for _, v := range secretValues {
						if strings.Contains(all, v) {
							t.Fatalf("a Secret value (%s) is on issue #%d:\n%s", v, is.Number, all)
						}
					}
				}
			}

			// Nothing drifted, nothing open: nothing to do.
			if is, err := n.Update(ctx, repo, "shop", "prod", rs.gone); err != nil || is != nil || emu.Writes() != 0 || len(kubeplans()) != 0 {
				t.Fatalf("no drift: %v %+v, %d writes", err, is, emu.Writes())
			}

			opened, err := n.Update(ctx, repo, "shop", "prod", rs.drifted)
			if err != nil {
				t.Fatal(err)
			}
			issues := kubeplans()
			if len(issues) != 1 || issues[0].State != "open" || issues[0].Title != "kubeplan: drift on prod / shop" {
				t.Fatalf("after drift: %+v", issues)
			}
			// The history names the issue it keeps.
			if opened == nil || opened.Number != issues[0].Number || opened.URL == "" {
				t.Fatalf("Update returned %+v, want issue #%d with its page", opened, issues[0].Number)
			}
			body, number := issues[0].Body, issues[0].Number
			for _, want := range []string{comments.DriftIssueMarker(repo, "shop", "prod"), "<code>~ Deployment ", `.spec.replicas changed by "kubectl-edit" (Update) at `,
				"-  replicas: 7\n+  replicas: 2", `.data.password changed by "kubectl-edit"`, "(secret keys: password)", "at `111111111111`", "| 2 | 0 | 0 |"} {
				if !strings.Contains(body, want) {
					t.Errorf("the issue does not say %q:\n%s", want, body)
				}
			}
			noSecrets()

			// The same drift, checked again: nothing written.
			writes := emu.Writes()
			if is, err := n.Update(ctx, repo, "shop", "prod", rs.drifted); err != nil || emu.Writes() != writes || is == nil || is.Number != number {
				t.Fatalf("the same drift again: %v, %d writes", err, emu.Writes()-writes)
			}

			// More drift: the same issue, edited; another cluster's drift is another issue.
			if is, err := n.Update(ctx, repo, "shop", "prod", rs.more); err != nil || is == nil || is.Number != number {
				t.Fatalf("more drift: %v, issue %+v, want #%d", err, is, number)
			}
			issues = kubeplans()
			if len(issues) != 1 || issues[0].Number != number || issues[0].Body == body ||
				!strings.Contains(issues[0].Body, "<code>+ ConfigMap ") || !strings.Contains(issues[0].Body, "| 2 | 1 | 0 |") {
				t.Fatalf("after more drift: %d issues\n%s", len(issues), issues[0].Body)
			}
			if emu.Writes() != writes+1 {
				t.Errorf("more drift: %d writes, want one edit", emu.Writes()-writes)
			}
			if _, err := n.Update(ctx, repo, "shop", "staging", rs.drifted); err != nil || len(kubeplans()) != 2 {
				t.Fatalf("another cluster: %v, %d issues", err, len(kubeplans()))
			}
			noSecrets()

			// Drift gone: closed with the note; seen again, nothing written.
			if is, err := n.Update(ctx, repo, "shop", "prod", rs.gone); err != nil || is == nil || is.Number != number {
				t.Fatalf("drift gone: %v, closed %+v, want #%d", err, is, number)
			}
			prod := kubeplans()[0]
			if prod.State != "closed" || len(prod.Comments) != 1 ||
				prod.Comments[0].Body != comments.DriftGone(closedAt, "3333333333333333333333333333333333333333") ||
				!strings.Contains(prod.Comments[0].Body, "Drift is gone as of 2026-07-02 08:30:00 UTC, checked at `333333333333`") {
				t.Fatalf("after drift gone: %+v", prod)
			}
			if staging := kubeplans()[1]; staging.State != "open" {
				t.Fatalf("another cluster's issue was closed too")
			}
			writes = emu.Writes()
			if is, err := n.Update(ctx, repo, "shop", "prod", rs.gone); err != nil || is != nil || emu.Writes() != writes {
				t.Fatalf("no drift again: %v, %d writes", err, emu.Writes()-writes)
			}
			if _, err := n.Update(ctx, repo, "shop", "prod", nil); err != nil || emu.Writes() != writes {
				t.Fatalf("no report: %v, %d writes", err, emu.Writes()-writes)
			}

			// Drift back: a new issue, the closed one left as it was.
			if _, err := n.Update(ctx, repo, "shop", "prod", rs.drifted); err != nil || len(kubeplans()) != 3 || kubeplans()[0].State != "closed" {
				t.Fatalf("drift back: %v, %+v", err, kubeplans())
			}
		})
	}
}

// A forge that fails says which issue could not be kept, and the next check puts it right.
func TestForgeErrorsNameTheIssue(t *testing.T) {
	ctx := context.Background()
	emu := forgeemu.New(token, "kubeplan-bot")
	t.Cleanup(emu.Close)
	emu.CreateRepo(repo, map[string]string{"a": "b"})
	n := &driftissue.Notifier{Forge: forges[0].connect(t, emu)}
	r := &driftreport.Report{Project: "shop", Cluster: "prod", Objects: []driftreport.Object{{State: driftreport.Missing, Mode: driftreport.Notify}}}
	emu.FailRequests("POST", "/issues", 1, 422)
	_, err := n.Update(ctx, repo, "shop", "prod", r)
	if err == nil || !strings.Contains(err.Error(), "open the drift issue of shop on prod in acme/platform") {
		t.Fatalf("error: %v", err)
	}
	if _, err := n.Update(ctx, repo, "shop", "prod", r); err != nil || len(emu.Issues(repo)) != 1 {
		t.Fatalf("next check: %v, %d issues", err, len(emu.Issues(repo)))
	}
}
