package workflow

import (
	"context"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/report"
)

// destructiveRefusal says why a target's destructive deletions (a Namespace or a CRD, and all
// they hold) may not be carried out, or "" when they may: the project must allow them
// (apply.allow_destructive), an approval rule that asks for approvals must cover the target —
// "no approval rule applies" is not a yes — and the approval rules must be met. /apply checks
// this after its other checks; a roll-out on merge checks it too, since a merge need not have
// waited for kubeplan/policy.
func (w *Workflow) destructiveRefusal(ctx context.Context, f Forge, ev event.Event, pr *forge.PullRequest, co *checkout, t target, p *plan.Plan) (string, error) {
	ds := report.Destructive(p)
	if len(ds) == 0 {
		return "", nil
	}
	switch {
	case !t.project.Apply.AllowDestructive:
		return comments.DestructiveNotAllowed(t.where(), ds), nil
	case !co.policy.Covers(t.project.Name, t.cluster):
		return comments.DestructiveUncovered(t.where(), ds), nil
	}
	v, err := w.judge(ctx, f, ev, pr, co, []planned{{target: t, plan: p}}, selection{project: t.project.Name, cluster: t.cluster})
	if err != nil {
		return "", err
	}
	if v.state != forge.Success {
		return comments.DestructiveUnapproved(t.where(), ds, v.summary), nil
	}
	return "", nil
}

// destructiveRefusals checks each target of an /apply with its fresh plan.
func (w *Workflow) destructiveRefusals(ctx context.Context, r applyRequest, fresh []planned) ([]string, error) {
	var reasons []string
	for i, t := range r.targets {
		if fresh[i].plan == nil {
			continue
		}
		refusal, err := w.destructiveRefusal(ctx, r.f, r.ev, r.pr, r.co, t, fresh[i].plan)
		if err != nil {
			return nil, err
		}
		if refusal != "" {
			reasons = append(reasons, refusal)
		}
	}
	return reasons, nil
}
