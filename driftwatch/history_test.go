package driftwatch_test

import (
	"context"
	"strings"
	"testing"

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

// kinds is "drift_check drifted, revert succeeded, …": an entry's kind and state, in order.
func kinds(es []history.Entry) string {
	var out []string
	for _, e := range es {
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
