package workflow

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/outcome"
	"github.com/kubeplan/kubeplan/plan"
)

func ref(kind, name string) plan.ObjectRef {
	return plan.ObjectRef{APIVersion: "v1", Kind: kind, Namespace: "shop", Name: name}
}

// objectsOf is "ConfigMap shop/a create" lines: what an entry says of each object.
func objectsOf(e history.Entry) string {
	var out []string
	for _, o := range e.Objects {
		line := o.Object.String() + " " + o.Outcome
		if o.Health != "" {
			line += " " + o.Health
		}
		if o.Error != "" {
			line += " (" + o.Error + ")"
		}
		if o.Diff != "" {
			line += " diff:" + o.Diff
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// The entries of a plan and of an apply say what the plan would do and what the apply did,
// object by object, with the plan's diffs.
func TestHistoryEntriesOfPlansAndApplies(t *testing.T) {
	p := &plan.Plan{Project: "web", Cluster: "prod", Changes: []plan.Change{
		{Object: ref("ConfigMap", "a"), Action: plan.Create, Diff: "+a"},
		{Object: ref("ConfigMap", "b"), Action: plan.Unchanged},
		{Object: ref("ConfigMap", "c"), Action: plan.Update, Diff: "-1\n+2"},
		{Object: ref("ConfigMap", "d"), Action: plan.Fail, Reason: "invalid key"},
	}}
	web := tgt("web@prod")
	base := history.Entry{Kind: history.Plan, Forge: "github", Repo: "acme/shop", Number: 7, SHA: head, Actor: "alice"}
	applyBase := base
	applyBase.Kind = history.Apply
	for _, tc := range []struct {
		name  string
		entry history.Entry
		state string
		want  string
	}{
		{name: "plan: unchanged objects left out, failures with their reason", entry: planEntry(base, planned{target: web, plan: p}), state: "planned",
			want: "ConfigMap shop/a create diff:+a\nConfigMap shop/c update diff:-1\n+2\nConfigMap shop/d fail (invalid key)"},
		{name: "plan that could not be made", entry: planEntry(base, planned{target: web, err: "cluster prod: unreachable"}), state: "failed"},
		{name: "apply: each object's outcome and health, with the diff applied",
			entry: applyEntry(applyBase, planned{target: web, plan: p}, "succeeded", "", &outcome.Result{Objects: []outcome.Object{
				{Object: ref("ConfigMap", "a"), Action: outcome.Created, Health: "Current"},
				{Object: ref("ConfigMap", "b"), Action: outcome.Unchanged, Health: "Current"},
				// The apiserver may answer with another version of the API: the same object.
				{Object: plan.ObjectRef{APIVersion: "v2", Kind: "ConfigMap", Namespace: "shop", Name: "c"}, Action: outcome.Configured},
				{Object: ref("ConfigMap", "old"), Action: outcome.Pruned},
			}}, ""), state: "succeeded",
			want: "ConfigMap shop/a created Current diff:+a\nConfigMap shop/b unchanged Current\nConfigMap shop/c configured diff:-1\n+2\nConfigMap shop/old pruned"},
		{name: "apply that stopped: what it did, and the changes it never reached",
			entry: applyEntry(applyBase, planned{target: web, plan: p}, "failed", "inventory unusable", &outcome.Result{Objects: []outcome.Object{
				{Object: ref("ConfigMap", "a"), Action: outcome.Created},
			}}, "inventory unusable"), state: "failed",
			want: "ConfigMap shop/a created diff:+a\nConfigMap shop/c not applied diff:-1\n+2\nConfigMap shop/d not applied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.entry
			if e.State != tc.state || e.Project != "web" || e.Cluster != "prod" || e.Actor != "alice" || e.Number != 7 {
				t.Errorf("entry: %+v; want state %s of web on prod", e, tc.state)
			}
			if got := objectsOf(e); got != tc.want {
				t.Errorf("objects:\n%s\nwant:\n%s", got, tc.want)
			}
			if e.Kind == history.Plan && tc.state == "failed" {
				if e.Summary != "cluster prod: unreachable" || e.PlanHash != "" {
					t.Errorf("summary %q, plan hash %q; want why it could not be planned, and no plan", e.Summary, e.PlanHash)
				}
			} else if e.PlanHash != p.Hash() {
				t.Errorf("plan hash %q, want the plan's %q", e.PlanHash, p.Hash())
			}
		})
	}
}

// The verdict is "allowed" or why not, with the approvals that counted then.
func TestHistoryVerdicts(t *testing.T) {
	approvals := []history.Approval{{Reviewer: "carol", SHA: head}}
	for _, tc := range []struct {
		v    verdict
		want string
	}{
		{verdict{state: "success", summary: "1 of 1 approvals", approvals: approvals}, "allowed [{carol " + head + "}]"},
		{verdict{state: "pending", summary: "0 of 2 approvals, needs @org/sre"}, "0 of 2 approvals, needs @org/sre []"},
		{verdict{}, " []"}, // not judged: no verdict
	} {
		e := judged(history.Entry{}, tc.v)
		if got := fmt.Sprintf("%s %v", e.Verdict, e.Approvals); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.v, got, tc.want)
		}
	}
}
