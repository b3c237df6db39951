package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
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
	// approvals are those that counted toward the approval rules, as the history records them.
	approvals []history.Approval
}

// judge evaluates the approval rules for the targets and the deny rules their plans broke.
// The approval rules are judged on each target under all its names and on the base branch's
// targets the change touches (see policyScope); the details say why rules of other names apply.
func (w *Workflow) judge(ctx context.Context, f Forge, ev event.Event, pr *forge.PullRequest, co *checkout, targets []planned, sel selection) (verdict, error) {
	scope, notes := co.policyScope(targets, sel)
	var denials []string
	for _, t := range targets {
		if t.plan != nil {
			for _, d := range t.plan.Denials() {
				denials = append(denials, comments.Denial(comments.Where{Project: t.project.Name, Cluster: t.cluster}, d))
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
	v := verdict{details: append(append(denials, st.Details...), notes...), approvals: historyApprovals(st.Counted)}
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
func (w *Workflow) evaluatePolicy(ctx context.Context, f Forge, ev event.Event, pr *forge.PullRequest, co *checkout, targets []planned) (verdict, error) {
	v, err := w.judge(ctx, f, ev, pr, co, targets, selection{})
	if err != nil {
		_ = statuses{f: f, repo: pr.Repo, sha: pr.HeadSHA}.policy(ctx, forge.Error, "kubeplan could not evaluate the policy: "+w.public(err))
		return v, err
	}
	w.Log.Info("policy evaluated", "repo", pr.Repo, "number", pr.Number, "head", pr.HeadSHA, "state", v.state, "summary", v.summary)
	return v, statuses{f: f, repo: pr.Repo, sha: pr.HeadSHA}.policy(ctx, v.state, v.summary)
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
		return statuses{f: f, repo: pr.Repo, sha: pr.HeadSHA}.policy(ctx, forge.Failure, "Policy not evaluated: "+cfgErr.Error())
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
func (w *Workflow) storedTargets(ctx context.Context, ev event.Event, co *checkout, head string) ([]planned, error) {
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
	var out []planned
	for _, t := range co.targets(w.Clusters.Registry().Default, selection{}, nil) {
		ct := planned{target: t}
		if r, ok := byTarget[t.key()]; ok {
			var p plan.Plan
			if err := json.Unmarshal(r.Body, &p); err == nil {
				ct.plan = &p
			}
		}
		out = append(out, ct)
	}
	return out, nil
}
