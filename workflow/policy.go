package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/repoconfig"
	"github.com/kubeplan/kubeplan/store"
)

// verdict is the policy's answer for a pull request's head: approvals and manifest rules.
type verdict struct {
	state   forge.State // success, pending (approvals missing) or failure (a deny rule)
	summary string
	details []string
}

// judge evaluates the approval rules for the targets and the deny rules their plans broke.
// The approval rules are judged on each target under all its names and on the base branch's
// targets the change touches (see policyScope); the details say why rules of other names apply.
func (w *Workflow) judge(ctx context.Context, f Forge, ev event.Event, pr *forge.PullRequest, co *checkout, targets []comments.Target, sel selection) (verdict, error) {
	scope, notes := co.policyScope(targets, sel)
	var denials []string
	for _, t := range targets {
		if t.Plan != nil {
			for _, d := range t.Plan.Denials() {
				denials = append(denials, fmt.Sprintf("%s / %s: %s", t.Cluster, t.Project, d))
			}
		}
	}
	reviews, err := f.Reviews(ctx, pr.Repo, pr.Number)
	if err != nil {
		return verdict{}, err
	}
	recorded, err := w.State.ApprovalSHAs(ctx, prKey(ev))
	if err != nil {
		return verdict{}, err
	}
	for i, r := range reviews {
		// GitLab does not say which commit an approval was given on; the webhook did.
		if r.Approved && r.CommitSHA == "" {
			reviews[i].CommitSHA = recorded[r.Author]
		}
	}
	st, err := co.policy.Approvals(ctx, f, policy.PullRequest{Author: pr.Author, HeadSHA: pr.HeadSHA, ChangedFiles: co.files, Reviews: reviews}, co.owners, scope)
	if err != nil {
		return verdict{}, err
	}
	v := verdict{details: append(append(denials, st.Details...), notes...)}
	switch {
	case len(denials) > 0:
		v.state, v.summary = forge.Failure, fmt.Sprintf("Denied: %s", denials[0])
	case !st.Satisfied:
		v.state, v.summary = forge.Pending, st.Summary
	default:
		v.state, v.summary = forge.Success, st.Summary
	}
	return v, nil
}

// evaluatePolicy judges the pull request and sets kubeplan/policy on its head.
func (w *Workflow) evaluatePolicy(ctx context.Context, f Forge, ev event.Event, pr *forge.PullRequest, co *checkout, targets []comments.Target) (verdict, error) {
	v, err := w.judge(ctx, f, ev, pr, co, targets, selection{})
	if err != nil {
		_ = f.SetStatus(ctx, pr.Repo, pr.HeadSHA, forge.Status{Context: StatusPolicy, State: forge.Error, Description: clip("kubeplan could not evaluate the policy: "+w.public(err), 140)})
		return v, err
	}
	w.Log.Info("policy evaluated", "repo", pr.Repo, "number", pr.Number, "head", pr.HeadSHA, "state", v.state, "summary", v.summary)
	return v, f.SetStatus(ctx, pr.Repo, pr.HeadSHA, forge.Status{Context: StatusPolicy, State: v.state, Description: clip(v.summary, 140)})
}

// review re-evaluates the policy after an approval, a review or a dismissal.
func (w *Workflow) review(ctx context.Context, ev event.Event) error {
	switch ev.Action {
	case event.Approved:
		if ev.HeadSHA != "" {
			if err := w.State.RecordApproval(ctx, prKey(ev), ev.Sender, ev.HeadSHA); err != nil {
				return err
			}
		}
	case event.Unapproved:
		if err := w.State.ForgetApproval(ctx, prKey(ev), ev.Sender); err != nil {
			return err
		}
	}
	f, pr, err := w.pullRequest(ctx, ev)
	if err != nil {
		return err
	}
	if pr.Closed {
		return nil
	}
	co, err := w.checkout(ctx, f, ev, pr, pr.HeadSHA)
	var cfgErr *repoconfig.Error
	if errors.As(err, &cfgErr) {
		return f.SetStatus(ctx, pr.Repo, pr.HeadSHA, forge.Status{Context: StatusPolicy, State: forge.Failure, Description: clip("Policy not evaluated: "+cfgErr.Error(), 140)})
	}
	if err != nil {
		return err
	}
	targets, err := w.storedTargets(ctx, ev, co, pr.HeadSHA)
	if err != nil {
		return err
	}
	_, err = w.evaluatePolicy(ctx, f, ev, pr, co, targets)
	return err
}

// storedTargets are the pull request's affected targets with their stored plans of this head
// (a target not planned yet has none: its deny rules are judged when it is).
func (w *Workflow) storedTargets(ctx context.Context, ev event.Event, co *checkout, head string) ([]comments.Target, error) {
	records, err := w.State.Plans(ctx, prKey(ev))
	if err != nil {
		return nil, err
	}
	byTarget := map[store.Target]store.PlanRecord{}
	for _, r := range records {
		if r.SHA == head {
			byTarget[r.Target] = r
		}
	}
	var out []comments.Target
	for _, t := range co.targets(w.Clusters.Registry().Default, selection{}, nil) {
		ct := comments.Target{Project: t.project.Name, Cluster: t.cluster}
		if r, ok := byTarget[t.key()]; ok {
			var p plan.Plan
			if err := json.Unmarshal(r.Body, &p); err == nil {
				ct.Plan = &p
			}
		}
		out = append(out, ct)
	}
	return out, nil
}
