package workflow

import (
	"context"
	"strings"

	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/outcome"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/policy"
)

// History states of the workflow's entries.
const (
	historyPlanned = "planned"
	historyFailed  = "failed"
	historyRefused = "refused"
	historyAllowed = "allowed"
)

// record appends e to the history (history.Record: a refused entry is logged and counted,
// never in the way of the work it records).
func (w *Workflow) record(ctx context.Context, e history.Entry) {
	history.Record(ctx, w.State, w.Log, w.ObserveHistoryFailure, e)
}

// entryOf is what every entry about a pull request's event shares: where, which commit, who.
func entryOf(kind history.Kind, ev event.Event, pr *forge.PullRequest, sha, actor string) history.Entry {
	e := history.Entry{Kind: kind, Forge: string(ev.Forge), Repo: ev.Repo, Number: ev.Number, URL: pr.URL, SHA: sha, Actor: actor}
	if pr.CommitURLPrefix != "" && sha != "" {
		e.CommitURL = pr.CommitURLPrefix + sha
	}
	return e
}

// judged is e with the policy's verdict and the approvals that counted for it.
func judged(e history.Entry, v verdict) history.Entry {
	e.Verdict = v.word()
	e.Approvals = v.approvals
	return e
}

// word is the verdict as the history says it: "allowed", or why not.
func (v verdict) word() string {
	if v.state == "" {
		return ""
	}
	if v.state == forge.Success {
		return historyAllowed
	}
	return v.summary
}

// historyApprovals are the approvals that counted, as the history keeps them.
func historyApprovals(counted []policy.Approval) []history.Approval {
	var out []history.Approval
	for _, a := range counted {
		out = append(out, history.Approval{Reviewer: a.Reviewer, SHA: a.SHA})
	}
	return out
}

// planEntry is one target's plan: its hash and the objects it would change, with their diffs
// (Secret values hidden by the planner, as in comments); or the error that stopped it.
func planEntry(base history.Entry, p planned) history.Entry {
	e := base
	e.Project, e.Cluster = p.project.Name, p.cluster
	if p.plan == nil {
		e.State, e.Summary = historyFailed, p.err
		return e
	}
	e.State, e.PlanHash, e.Summary = historyPlanned, p.plan.Hash(), p.plan.Counts().String()
	for _, ch := range p.plan.Changes {
		if ch.Action == plan.Unchanged {
			continue // unchanged objects would swamp the entry and say nothing
		}
		o := history.Object{Object: ch.Object, Outcome: string(ch.Action), Diff: ch.Diff}
		if ch.Action == plan.Fail {
			o.Error = ch.Reason
		}
		e.Objects = append(e.Objects, o)
	}
	return e
}

// applyEntry is one target's apply: what became of each object, with the diff of the plan
// that was applied. res is what the applier did (all of it, or what it did before it
// stopped); failure says why it stopped. Planned changes it never reached are "not applied".
func applyEntry(base history.Entry, p planned, state, summary string, res *outcome.Result, failure string) history.Entry {
	e := base
	e.Project, e.Cluster, e.State, e.Summary = p.project.Name, p.cluster, state, summary
	changes := map[string]plan.Change{}
	if p.plan != nil {
		e.PlanHash = p.plan.Hash()
		for _, ch := range p.plan.Changes {
			changes[objectKey(ch.Object)] = ch
		}
	}
	done := map[string]bool{}
	if res != nil {
		for _, o := range res.Objects {
			k := objectKey(o.Object)
			done[k] = true
			e.Objects = append(e.Objects, history.Object{Object: o.Object, Outcome: string(o.Action), Health: o.Health,
				Error: o.Error, Diff: changes[k].Diff})
		}
	}
	if failure != "" && p.plan != nil {
		for _, ch := range p.plan.Changes {
			if k := objectKey(ch.Object); !done[k] && ch.Action != plan.Unchanged {
				e.Objects = append(e.Objects, history.Object{Object: ch.Object, Outcome: notApplied, Diff: ch.Diff})
			}
		}
	}
	return e
}

// refusedEntry is a target an apply or roll-out did not touch, and why.
func refusedEntry(base history.Entry, t target, p *plan.Plan, why string) history.Entry {
	e := base
	e.Project, e.Cluster, e.State, e.Summary = t.project.Name, t.cluster, historyRefused, why
	if p != nil {
		e.PlanHash = p.Hash()
	}
	return e
}

// objectKey names an object whatever version of its API a side used.
func objectKey(r plan.ObjectRef) string {
	return strings.Join([]string{r.Group(), r.Kind, r.Namespace, r.Name}, "|")
}
