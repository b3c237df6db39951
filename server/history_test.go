package server_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/driftwatch"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/store"
)

// readHistory opens the stopped server's store and returns its history, oldest first, after
// checking that the chain holds over every entry.
// withoutRepeats is h without the drift checks that found what the check before them found
// (every check is recorded; those list no objects).
func withoutRepeats(t *testing.T, h []history.Entry) []history.Entry {
	t.Helper()
	var out []history.Entry
	for _, e := range h {
		if strings.HasPrefix(e.Summary, driftwatch.RepeatCheck) {
			if len(e.Objects) != 0 {
				t.Errorf("a repeated check lists objects: %+v", e)
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

func readHistory(t *testing.T, state string) []history.Entry {
	t.Helper()
	ctx := context.Background()
	q, err := store.Open(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	newest, err := q.State().History(ctx, history.Filter{Limit: store.MaxHistoryLimit})
	if err != nil {
		t.Fatal(err)
	}
	v, err := q.State().VerifyHistory(ctx)
	if err != nil || !v.OK() || v.Checked != len(newest) {
		t.Fatalf("the history's chain does not hold over its %d entries: %+v %v", len(newest), v, err)
	}
	out := make([]history.Entry, len(newest))
	for i, e := range newest {
		out[len(newest)-1-i] = e
	}
	return out
}

// find returns the entries of kind about pull request n on cluster, oldest first.
func find(es []history.Entry, kind history.Kind, n int, cluster string) []history.Entry {
	var out []history.Entry
	for _, e := range es {
		if e.Kind == kind && e.Number == n && e.Cluster == cluster {
			out = append(out, e)
		}
	}
	return out
}

// object is what e says of the object named like "ConfigMap ns/settings", if it names it.
func object(e history.Entry, name string) (history.Object, bool) {
	for _, o := range e.Objects {
		if o.Object.String() == name {
			return o, true
		}
	}
	return history.Object{}, false
}

func secretManifest(value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: %q}\n", value)
}

// The history of a pull request's journey, on both forges, as kubeplan serve writes it: the
// plan when it is opened (and a cluster it could not plan on); carol's approval of the head,
// then dave's /apply, recorded with dave as the actor and carol's approval of that commit as
// it stood; the roll-out on merge with the merge commit and the merger; a roll-out the
// apiserver rejects an object of, with the object's error. No entry holds a Secret value, and
// the chain holds over all of them.
func TestHistoryRecordsThePullRequestJourney(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			ns := unique("history-" + fc.name)
			emu := forgeemu.New(token, bot)
			t.Cleanup(emu.Close)
			repo := "acme/" + ns
			const oldSecret, newSecret = "hunter2-in-git-before", "s3cr3t-the-pull-request-sets"
			base := emu.CreateRepo(repo, map[string]string{
				// gone is a cluster whose apiserver does not answer.
				".kubeplan.yaml":         fmt.Sprintf("version: 1\nprojects:\n  - name: web\n    dir: apps/web\n    namespace: %s\n    clusters: [prod, gone]\n", ns),
				"apps/web/ns.yaml":       fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns),
				"apps/web/settings.yaml": journeyConfigMap("v1"),
				"apps/web/secret.yaml":   secretManifest(oldSecret),
			})
			for user, perm := range map[string]forge.Permission{"alice": forge.PermWrite, "carol": forge.PermWrite, "dave": forge.PermWrite} {
				emu.SetPermission(repo, user, perm)
			}
			state := filepath.Join(t.TempDir(), "state.db")
			e := start(t, emu, state, true, func(c *config.Config) {
				c.Policy = policy.Config{Approvals: []policy.ApprovalRule{{Name: "one", MinApprovals: 1}}}
			})
			j := &journey{t: t, fc: fc, e: e, emu: emu, repo: repo}
			settled := func(n int, sha, context string) {
				t.Helper()
				j.waitFor(n, context+" settled on "+sha, func(pr forgeemu.PR) bool {
					st, ok := pr.LatestStatus(sha, context)
					return ok && st.State != forge.Pending
				})
			}

			// alice opens it: planned on prod, not on gone.
			pr1 := emu.OpenPR(repo, "alice", "web: v2 and a new password", base, map[string]string{
				"apps/web/settings.yaml": journeyConfigMap("v2"), "apps/web/secret.yaml": secretManifest(newSecret)})
			j.pull(pr1, "opened", "alice")
			head := emu.PRState(repo, pr1).HeadSHA
			j.status(pr1, head, "kubeplan/policy", forge.Pending, "0 of 1")

			// carol approves that commit; dave applies it to prod.
			j.approve(pr1, "carol")
			j.status(pr1, head, "kubeplan/policy", forge.Success, "")
			before := j.lastCommentID(pr1)
			j.post(pr1, "dave", "/apply -c prod")
			j.comment(pr1, before, "Applied prod / web")

			// carol merges: rolled out on prod; gone cannot be planned.
			merge := emu.MergePR(repo, pr1, "carol")
			j.pull(pr1, "merged", "carol")
			settled(pr1, merge, "kubeplan/apply")

			// A change whose ConfigMap the apiserver rejects, approved and merged anyway.
			pr2 := emu.OpenPR(repo, "alice", "web: a bad key", emu.DefaultHead(repo), map[string]string{
				"apps/web/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: {\"not a key!\": x}\n"})
			j.pull(pr2, "opened", "alice")
			head2 := emu.PRState(repo, pr2).HeadSHA
			j.status(pr2, head2, "kubeplan/policy", forge.Pending, "0 of 1")
			j.approve(pr2, "carol")
			j.status(pr2, head2, "kubeplan/policy", forge.Success, "")
			merge2 := emu.MergePR(repo, pr2, "carol")
			j.pull(pr2, "merged", "carol")
			settled(pr2, merge2, "kubeplan/apply")
			e.stop()

			h := readHistory(t, state)
			settings, creds := "ConfigMap "+ns+"/settings", "Secret "+ns+"/creds"

			// The plan of the opened pull request: who pushed, where, what would change.
			plans := find(h, history.Plan, pr1, "prod")
			if len(plans) == 0 {
				t.Fatalf("no plan entry of #%d on prod in %d entries", pr1, len(h))
			}
			planned := plans[0]
			if planned.Actor != "alice" || planned.SHA != head || planned.State != "planned" || planned.Forge != fc.name || planned.Repo != repo ||
				planned.Project != "web" || planned.PlanHash == "" || planned.Verdict != "0 of 1 approvals" || len(planned.Approvals) != 0 ||
				!strings.Contains(planned.URL, fmt.Sprint(pr1)) || !strings.HasSuffix(planned.CommitURL, head) {
				t.Errorf("plan entry: %+v", planned)
			}
			if o, ok := object(planned, settings); !ok || o.Outcome != "create" || !strings.Contains(o.Diff, "value: v2") {
				t.Errorf("plan entry's %s: %+v %v", settings, o, ok)
			}
			if o, ok := object(planned, creds); !ok || o.Outcome != "create" {
				t.Errorf("plan entry's %s: %+v %v", creds, o, ok)
			}
			if failed := find(h, history.Plan, pr1, "gone"); len(failed) == 0 || failed[0].State != "failed" || failed[0].Summary == "" || len(failed[0].Objects) != 0 {
				t.Errorf("plan entries on the unreachable cluster: %+v; want failed, saying why", failed)
			}

			// dave's /apply: the approval as it stood, the plan applied, what became of each object.
			applies := find(h, history.Apply, pr1, "prod")
			if len(applies) != 1 {
				t.Fatalf("apply entries of #%d on prod: %+v; want one", pr1, applies)
			}
			applied := applies[0]
			if applied.Actor != "dave" || applied.SHA != head || applied.State != "succeeded" || applied.Verdict != "allowed" ||
				fmt.Sprint(applied.Approvals) != fmt.Sprint([]history.Approval{{Reviewer: "carol", SHA: head}}) || applied.PlanHash != planned.PlanHash {
				t.Errorf("apply entry: %+v; want dave's, on carol's approval of %s, with the plan of %s", applied, head, planned.PlanHash)
			}
			if o, ok := object(applied, settings); !ok || o.Outcome != "created" || o.Health != "Current" || !strings.Contains(o.Diff, "value: v2") {
				t.Errorf("apply entry's %s: %+v %v", settings, o, ok)
			}

			// The roll-out on merge: the merge commit, by the merger.
			rollouts := find(h, history.Rollout, pr1, "prod")
			if len(rollouts) != 1 {
				t.Fatalf("roll-out entries of #%d on prod: %+v; want one", pr1, rollouts)
			}
			rolled := rollouts[0]
			if rolled.Actor != "carol" || rolled.SHA != merge || !strings.HasSuffix(rolled.CommitURL, merge) || rolled.State != "succeeded" ||
				rolled.Verdict != "allowed" || len(rolled.Approvals) != 1 {
				t.Errorf("roll-out entry: %+v; want carol's merge %s", rolled, merge)
			}
			if o, ok := object(rolled, settings); !ok || o.Outcome != "unchanged" {
				t.Errorf("roll-out entry's %s: %+v %v (applied before the merge)", settings, o, ok)
			}
			if gone := find(h, history.Rollout, pr1, "gone"); len(gone) != 1 || gone[0].State != "refused" || !strings.Contains(gone[0].Summary, "cannot plan") {
				t.Errorf("roll-out entries on the unreachable cluster: %+v; want one refused", gone)
			}

			// The roll-out the apiserver refused an object of: failed, with the object's error.
			bad := find(h, history.Rollout, pr2, "prod")
			if len(bad) != 1 || bad[0].State != "failed" || bad[0].SHA != merge2 {
				t.Fatalf("roll-out entries of #%d on prod: %+v; want one failed", pr2, bad)
			}
			if o, ok := object(bad[0], "ConfigMap "+ns+"/bad"); !ok || o.Outcome != "failed" || !strings.Contains(o.Error, "not a key!") {
				t.Errorf("failed roll-out's ConfigMap: %+v %v; want failed with the apiserver's reason", o, ok)
			}

			// No Secret value anywhere in the history, as written or as the apiserver encodes it.
			for _, entry := range h {
				body, err := json.Marshal(entry)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range []string{oldSecret, newSecret, base64.StdEncoding.EncodeToString([]byte(oldSecret)), base64.StdEncoding.EncodeToString([]byte(newSecret))} {
					if strings.Contains(string(body), v) {
						t.Fatalf("history entry %d (%s of #%d) holds a Secret value:\n%s", entry.Seq, entry.Kind, entry.Number, body)
					}
				}
			}
		})
	}
}

// A state store that will not take history entries (here a trigger refuses every row, as a
// full disk or a broken migration would) loses none of the work they record: the plan is
// posted, /apply applies and reports, and each lost entry is counted by kind.
func TestAHistoryTheStoreRefusesLosesNoWork(t *testing.T) {
	fc := forges[0]
	ns := unique("history-refused")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rollOut(ctx, t, prod, ns) }()
	t.Cleanup(func() { cancel(); <-done })
	emu, repo, n := bumpPR(t, ns, "")
	emu.SetPermission(repo, "dave", forge.PermWrite)
	state := filepath.Join(t.TempDir(), "state.db")
	e := start(t, emu, state, true)
	db, err := sql.Open("sqlite", "file:"+state+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse_history BEFORE INSERT ON history BEGIN SELECT RAISE(ABORT, 'the history refuses'); END`); err != nil {
		t.Fatal(err)
	}
	j := &journey{t: t, fc: fc, e: e, emu: emu, repo: repo}

	j.pull(n, "opened", "alice")
	head := emu.PRState(repo, n).HeadSHA
	j.status(n, head, "kubeplan/plan", forge.Success, "")
	before := j.lastCommentID(n)
	j.post(n, "dave", "/apply")
	j.comment(n, before, "Applied prod / web")
	j.status(n, head, "kubeplan/apply", forge.Success, "")
	e.waitMetrics(`kubeplan_history_append_failures_total{kind="apply"} 1`)
	if m := get(t, e.url+"/metrics"); !regexp.MustCompile(`kubeplan_history_append_failures_total\{kind="plan"\} [1-9]`).MatchString(m) {
		t.Errorf("the plan entries lost are not counted:\n%s", m)
	}
}
