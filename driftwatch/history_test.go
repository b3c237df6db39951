package driftwatch_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/driftwatch"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/store"
)

// historyOf is the history the checks wrote, oldest first, after checking that its chain holds.
func historyOf(t *testing.T, state *store.State) []history.Entry {
	t.Helper()
	ctx := context.Background()
	v, err := state.VerifyHistory(ctx)
	if err != nil || !v.OK() {
		t.Fatalf("the history's chain does not hold: %+v %v", v, err)
	}
	newest, err := state.History(ctx, history.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]history.Entry, len(newest))
	for i, e := range newest {
		out[len(newest)-1-i] = e
	}
	return out
}

// kinds is "drift_check drifted, revert succeeded, …": an entry's kind and state, in order,
// leaving out the checks that found what the check before them found.
func kinds(es []history.Entry) string {
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Summary, driftwatch.RepeatCheck) {
			continue
		}
		out = append(out, string(e.Kind)+" "+e.State)
	}
	return strings.Join(out, ", ")
}

// causes are every cause line of every object of e.
func causes(e history.Entry) string {
	var out []string
	for _, o := range e.Objects {
		out = append(out, o.Object.String()+" "+o.Outcome+": "+strings.Join(o.Causes, "; "))
	}
	return strings.Join(out, "\n")
}

// A check that cannot run to the end (here: git's manifests do not parse) is in the history
// too, saying why, with no objects; the check after the fix is not taken for a repeat of it.
func TestAFailedCheckIsInTheHistory(t *testing.T) {
	f := newFixture(t, "")
	state := openState(t, filepath.Join(t.TempDir(), "state.db"))
	w := f.watcher(state, time.Millisecond, false, nil)

	f.emu.PushDefault(f.repo, map[string]string{"app/app.yaml": "kind: [unclosed\n"})
	if _, err := w.CheckDue(context.Background()); err == nil {
		t.Fatal("a check of manifests that do not parse succeeded")
	}
	f.emu.PushDefault(f.repo, map[string]string{"app/app.yaml": f.docs})
	f.checkDue(w)

	h := historyOf(t, state)
	if got := kinds(h); got != "drift_check failed, drift_check clean" {
		t.Fatalf("history: %s; want the failed check, then the clean one", got)
	}
	if h[0].Actor != "kubeplan" || h[0].Project != "shop" || h[0].Cluster != "test" || len(h[0].Objects) != 0 || !strings.Contains(h[0].Summary, "app/app.yaml") {
		t.Errorf("failed check entry: %+v; want why, naming the file", h[0])
	}
}
