package workflow

import (
	"context"
	"errors"
	"strings"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/repoconfig"
	"github.com/kubeplan/kubeplan/store"
)

// mergeGroup checks the commit a merge queue would merge for a pull request (GitHub's
// merge_group). That commit carries the pull request on top of the base branch and the pull
// requests queued before it, so it is planned again rather than passed on the strength of the
// pull request's own plan: each target's plan must be the one reviewed on the pull request
// (same plan hash), the policy must hold as for /apply (the apply role of whoever queued it,
// the approvals on the pull request's head, the deny rules on the commit's own plan), and the
// projects to be applied before merge must have been. kubeplan/plan, kubeplan/policy and
// kubeplan/apply on the commit say so, for the queue's required checks; a group that fails is
// explained on the pull request. The verdict is recorded: a roll-out of that very commit by the
// queue's account relies on it.
func (w *Workflow) mergeGroup(ctx context.Context, ev event.Event) error {
	f, pr, err := w.pullRequest(ctx, ev)
	if err != nil {
		return err
	}
	sha := ev.HeadSHA
	log := w.Log.With("repo", ev.Repo, "number", ev.Number, "mergeGroup", sha, "sender", ev.Sender)
	if pr.Closed || sha == "" {
		log.Info("merge group of a closed pull request: nothing to check")
		return nil
	}
	st := statuses{f: f, repo: pr.Repo, sha: sha}
	fail := func(summary string, reasons []string) error {
		log.Info("merge group refused", "summary", summary)
		if err := w.State.RecordMergeGroup(ctx, prKey(ev), store.MergeGroupCheck{SHA: sha, Actor: ev.Sender, Summary: summary}); err != nil {
			return err
		}
		_, err := f.CreateComment(ctx, pr.Repo, pr.Number, comments.MergeGroupRefused(sha, reasons))
		return err
	}

	co, err := w.checkout(ctx, f, ev, pr, sha)
	var cfgErr *repoconfig.Error
	if errors.As(err, &cfgErr) {
		_ = st.policy(ctx, forge.Failure, "Policy not evaluated: "+cfgErr.Error())
		_ = st.apply(ctx, forge.Failure, "Not checked: "+cfgErr.Error())
		if err := st.plan(ctx, forge.Failure, cfgErr.Error()); err != nil {
			return err
		}
		return fail(cfgErr.Error(), []string{cfgErr.Error()})
	}
	if err != nil {
		_ = st.plan(ctx, forge.Error, "kubeplan could not plan the merge queue's commit: "+err.Error())
		return err
	}
	if err := st.plan(ctx, forge.Pending, "Planning the merge queue's commit…"); err != nil {
		return err
	}
	targets := co.targets(w.Clusters.Registry().Default, selection{}, nil)
	plans := w.planTargets(ctx, co, targets, prInfo(pr), log)

	// kubeplan/plan: every target planned as reviewed.
	records, err := w.State.Plans(ctx, prKey(ev))
	if err != nil {
		return err
	}
	planState, planDesc, planProblems := groupPlan(plans, records, pr.Number, pr.HeadSHA, sha)
	if err := st.plan(ctx, planState, planDesc); err != nil {
		return err
	}

	// kubeplan/policy: as /apply judges it, for whoever queued the pull request.
	roleProblems, err := w.queuerRefusals(ctx, f, ev, co, targets)
	if err != nil {
		return err
	}
	v, err := w.judge(ctx, f, ev, pr, co, plans, selection{})
	if err != nil {
		return err
	}
	policyState, policyDesc := v.state, v.summary
	var policyProblems []string
	switch {
	case len(roleProblems) > 0:
		policyState, policyDesc = forge.Failure, roleProblems[0]
		policyProblems = roleProblems
	case v.state != forge.Success:
		// Nothing changes a merge group's approvals: waiting would only stall the queue.
		policyState = forge.Failure
		policyProblems = []string{comments.PolicyUnmet("", v.summary, v.details)}
	}
	if err := st.policy(ctx, policyState, policyDesc); err != nil {
		return err
	}

	// kubeplan/apply: what the pull request's head needs applied before merge was applied.
	applied, err := w.applyStatus(ctx, ev, pr, targets)
	if err != nil {
		return err
	}
	var applyProblems []string
	if applied.State != forge.Success {
		applied.State = forge.Failure
		applyProblems = []string{applied.Description}
	}
	if err := st.apply(ctx, applied.State, applied.Description); err != nil {
		return err
	}

	problems := append(append(planProblems, policyProblems...), applyProblems...)
	if len(problems) > 0 {
		return fail(strings.SplitN(problems[0], "\n", 2)[0], problems)
	}
	log.Info("merge group checked: as reviewed", "targets", len(targets))
	return w.State.RecordMergeGroup(ctx, prKey(ev), store.MergeGroupCheck{SHA: sha, Actor: ev.Sender, Passed: true, Summary: planDesc})
}

// queuerRefusals checks the apply role of whoever queued the pull request on each target, as
// /apply checks its commenter's. GitHub names them as the merge group's sender; when it names
// an app's account, there is no person's role to check, and the queue's own rule (write
// access to queue) stands.
func (w *Workflow) queuerRefusals(ctx context.Context, f Forge, ev event.Event, co *checkout, targets []target) ([]string, error) {
	if ev.Sender == "" || ev.SenderIsBot || len(targets) == 0 {
		return nil, nil
	}
	perm, err := f.Permission(ctx, ev.Repo, ev.Sender)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range targets {
		id := co.policyTarget(t.project.Name, t.cluster)
		err := co.policy.AuthorizeRequest(ctx, f, policy.Request{User: ev.Sender, Permission: perm, Repo: ev.Repo,
			Project: t.project.Name, Cluster: t.cluster, Was: id.Was, New: id.New, Need: policy.RoleApply, Command: "merge"})
		if refusal, ok := policy.IsRefusal(err); ok {
			out = append(out, refusal.Message)
		} else if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// groupCheckText says why a target of the merge queue's commit sha is not the plan reviewed
// at the pull request's head (see groupCheck).
func groupCheckText(p planned, c planCheck, number int, head, sha string) string {
	switch c {
	case planUnplannable:
		return comments.GroupUnplanned(p.where(), sha, p.err)
	case planFailing:
		return comments.GroupWouldFail(p.where(), p.plan.Counts().Fail)
	case planNotReviewed:
		return comments.NotReviewed(p.where(), number, head)
	case planChanged:
		return comments.GroupDiffers(p.where(), head)
	}
	return ""
}
