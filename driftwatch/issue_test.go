package driftwatch_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/driftissue"
	"github.com/kubeplan/kubeplan/driftwatch"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/store"
)

// issues keeps the drift issue, as kubeplan serve wires package driftissue to the watcher.
type issues struct{ w *driftwatch.Watcher }

func (n issues) Notify(ctx context.Context, no driftwatch.Notice) error {
	_, err := n.NotifyIssue(ctx, no)
	return err
}

func (n issues) NotifyIssue(ctx context.Context, no driftwatch.Notice) (*forge.Issue, error) {
	forgeName, repo, _ := strings.Cut(no.Repository, ":")
	f, err := n.w.Forges(ctx, driftwatch.Repository{Forge: forgeName, Name: repo})
	if err != nil {
		return nil, err
	}
	r := *no.Report
	if r.Commit == "" {
		r.Commit = no.SHA
	}
	return (&driftissue.Notifier{Forge: f.(driftissue.Forge)}).Update(ctx, repo, no.Project, no.Cluster, &r)
}

// `/apply` on the drift issue, on both forges: refused to someone without the apply role and
// while a pull request holds the project locked, ignored on a person's issue that copies the
// marker, and from someone with the role it puts git back, is recorded with them as the
// actor, answered on the issue, and the check after it closes the issue.
func TestApplyFromDriftIssue(t *testing.T) {
	for _, forgeName := range []string{"github", "gitlab"} {
		t.Run(forgeName, func(t *testing.T) {
			ctx := context.Background()
			f := newFixtureOn(t, forgeName, "")
			state := openState(t, filepath.Join(t.TempDir(), "state.db"))
			w := f.watcher(state, time.Hour, false, nil)
			w.Notifiers = append(w.Notifiers, issues{w})
			repoKey := forgeName + ":" + f.repo
			target := store.Target{Project: "shop", Cluster: "test"}
			f.emu.SetPermission(f.repo, "bob", forge.PermWrite)
			f.emu.SetPermission(f.repo, "mallory", forge.PermRead)

			f.scale(5)
			f.checkDue(w)
			opened := f.emu.Issues(f.repo)
			if len(opened) != 1 || opened[0].Author != "kubeplan-bot" || opened[0].State != "open" {
				t.Fatalf("drift issues: %+v; want kubeplan's one, open", opened)
			}
			number := opened[0].Number
			marker := comments.DriftIssueMarker(f.repo, "shop", "test")
			// ask comments on an issue as who and returns what kubeplan answered there.
			ask := func(issue int, who, body string) (*forgeemu.Comment, []string) {
				t.Helper()
				c := f.emu.AddIssueComment(f.repo, issue, who, body)
				if err := w.ApplyFromIssue(ctx, driftwatch.IssueCommand{Repository: driftwatch.Repository{Forge: forgeName, Name: f.repo},
					Number: issue, CommentID: c.ID, Body: body, Sender: who, Marker: marker}); err != nil {
					t.Fatal(err)
				}
				var answers []string
				for _, is := range f.emu.Issues(f.repo) {
					for _, x := range is.Comments {
						if is.Number == issue && x.Author == "kubeplan-bot" {
							answers = append(answers, x.Body)
						}
						if x.ID == c.ID {
							c = x
						}
					}
				}
				return c, answers
			}
			applies := func() []store.ApplyRecord {
				t.Helper()
				a, err := state.Applies(ctx, repoKey)
				if err != nil {
					t.Fatal(err)
				}
				return a
			}

			// A person's issue that copies the marker is not kubeplan's: nothing happens, even
			// for someone with the role.
			forged := f.emu.OpenIssue(f.repo, "mallory", "kubeplan: drift on test / shop", marker+"\nplease apply")
			if c, answers := ask(forged, "bob", "/apply"); len(answers) != 0 || len(c.Reactions) != 0 {
				t.Fatalf("forged issue: answers %q, reactions %q; want none", answers, c.Reactions)
			}
			// No apply role: refused, nothing applied.
			if _, answers := ask(number, "mallory", "/apply"); len(answers) != 1 || !strings.Contains(answers[0], "`/apply` refused") ||
				!strings.Contains(answers[0], "@mallory may not /apply") {
				t.Fatalf("answers to mallory: %q; want one refusal naming the role", answers)
			}
			// Locked by a pull request: refused.
			if _, ok, err := state.Acquire(ctx, store.Lock{Repo: repoKey, Target: target, PR: repoKey + "#7", Number: 7, Holder: "alice"}); err != nil || !ok {
				t.Fatalf("lock: %v %v", ok, err)
			}
			if _, answers := ask(number, "bob", "/apply"); len(answers) != 2 || !strings.Contains(answers[1], "is locked by #7") {
				t.Fatalf("answers while locked: %q; want a refusal naming #7", answers)
			}
			if f.replicas() != 5 || len(applies()) != 0 {
				t.Fatalf("refused, yet replicas %d, applies %+v", f.replicas(), applies())
			}
			if _, err := state.Unlock(ctx, repoKey, target); err != nil {
				t.Fatal(err)
			}

			// bob has the role: git is back, recorded with bob as the actor, answered, closed.
			c, answers := ask(number, "bob", "/apply")
			if f.replicas() != 2 {
				t.Errorf("replicas %d after /apply; want git's 2", f.replicas())
			}
			a := applies()
			if len(a) != 1 || a[0].Trigger != store.DriftApply || a[0].Actor != "bob" || a[0].State != store.ApplySucceeded || a[0].Target != target ||
				a[0].SHA != f.emu.DefaultHead(f.repo) {
				t.Fatalf("apply history: %+v; want one succeeded drift_apply by bob", a)
			}
			if len(c.Reactions) != 1 || c.Reactions[0] != "eyes" {
				t.Errorf("reactions on bob's comment: %q", c.Reactions)
			}
			var applied string
			for _, x := range answers {
				if strings.HasPrefix(x, "@bob ✅ applied git at") {
					applied = x
				}
			}
			if !strings.Contains(applied, "Deployment "+f.ns+"/web") {
				t.Fatalf("answers: %q; want the outcome naming the Deployment", answers)
			}
			is := f.emu.Issues(f.repo)
			for _, x := range is {
				if x.Number == number && x.State != "closed" {
					t.Fatalf("the drift issue is %s after the /apply; want closed", x.State)
				}
			}
			if rec, _, _ := state.DriftOf(ctx, repoKey, target); rec.Signature != "" || rec.Notified != "" {
				t.Fatalf("drift record after the /apply: %+v", rec)
			}

			// The history: the drift, on its issue; the two refusals; bob's apply on the issue;
			// the drift gone, on the issue it closed.
			h := historyOf(t, state)
			if got := kinds(h); got != "drift_check drifted, drift_apply refused, drift_apply refused, drift_apply succeeded, drift_check clean" {
				t.Fatalf("history: %s", got)
			}
			for _, e := range h {
				if !e.Issue || e.Number != number || e.URL == "" || e.Forge != forgeName || e.Repo != f.repo {
					t.Errorf("%s entry is not about drift issue #%d: %+v", e.Kind, number, e)
				}
			}
			if h[1].Actor != "mallory" || !strings.Contains(h[1].Summary, "may not /apply") || h[2].Actor != "bob" || !strings.Contains(h[2].Summary, "locked by #7") {
				t.Errorf("refusals: %+v\n%+v", h[1], h[2])
			}
			did := h[3]
			if did.Actor != "bob" || did.Verdict != "allowed" || len(did.Objects) != 1 || did.Objects[0].Outcome != "configured" ||
				did.Objects[0].Object.String() != "Deployment "+f.ns+"/web" || !strings.Contains(did.Objects[0].Diff, "replicas") {
				t.Errorf("drift_apply entry: %+v", did)
			}
		})
	}
}
