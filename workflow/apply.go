package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/repoconfig"
	"github.com/kubeplan/kubeplan/store"
)

// apply runs /apply: every check first, each refusal saying which check and why, then the
// apply of each selected target with the plan that was reviewed.
func (w *Workflow) apply(ctx context.Context, f Forge, ev event.Event, sel selection) error {
	pr, err := f.PullRequest(ctx, ev.Repo, ev.Number)
	if err != nil {
		return err
	}
	log := w.Log.With("repo", ev.Repo, "number", ev.Number, "head", pr.HeadSHA, "sender", ev.Sender)
	refuse := func(reasons ...string) error {
		log.Info("apply refused", "reasons", strings.Join(reasons, "; "))
		return reply(ctx, f, ev, "`/apply` refused:\n\n- "+strings.Join(reasons, "\n- "))
	}
	if pr.Closed {
		return refuse("the pull request is closed. Merged changes roll out on merge.")
	}
	// An apply a crash interrupted is re-planned and reported, never re-run blindly.
	interrupted, err := w.State.Interrupted(ctx, prKey(ev))
	if err != nil {
		return err
	}
	if len(interrupted) > 0 {
		var which []string
		for _, r := range interrupted {
			which = append(which, fmt.Sprintf("`%s` on `%s` (at `%s`, by @%s)", r.Project, r.Cluster, short(r.SHA), r.Actor))
		}
		log.Warn("interrupted apply found: planning again instead of applying", "applies", strings.Join(which, ", "))
		if err := w.plan(ctx, ev, selection{}); err != nil {
			return err
		}
		return reply(ctx, f, ev, "kubeplan stopped while applying "+strings.Join(which, ", ")+
			": some objects may be applied, others not. Nothing was applied again. The plan comment now shows the live state against this pull request; review it and comment `/apply` to finish.")
	}

	co, err := w.checkout(ctx, f, pr, pr.HeadSHA)
	var cfgErr *repoconfig.Error
	if errors.As(err, &cfgErr) {
		return refuse(cfgErr.Error())
	}
	if err != nil {
		return err
	}
	targets := co.targets(w.Clusters.Registry().Default, sel, nil)
	if len(targets) == 0 {
		all := co.targets(w.Clusters.Registry().Default, selection{}, nil)
		return refuse(fmt.Sprintf("no project this pull request affects matches %s. Affected: %s.", sel, describeTargets(all)))
	}

	// 1. The commenter's role on each target.
	var reasons []string
	perm, err := f.Permission(ctx, ev.Repo, ev.Sender)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if err := co.policy.AuthorizeRequest(ctx, f, policy.Request{User: ev.Sender, Permission: perm, Repo: ev.Repo,
			Project: t.project.Name, Cluster: t.cluster, Need: policy.RoleApply, Command: "/apply"}); err != nil {
			var refusal *policy.Refusal
			if !errors.As(err, &refusal) {
				return err
			}
			reasons = append(reasons, refusal.Message)
		}
	}
	// 2. The project allows applying before merge.
	for _, t := range targets {
		if t.project.BeforeMerge() == "disabled" {
			reasons = append(reasons, fmt.Sprintf("%s is not applied before merge (apply.before_merge: disabled): merging rolls it out", t))
		}
	}
	// 3. Policy: approvals and deny rules for these targets.
	stored, err := w.storedTargets(ctx, ev, co, pr.HeadSHA)
	if err != nil {
		return err
	}
	var chosen []comments.Target
	for _, t := range stored {
		if sel.matches(t.Project, t.Cluster) {
			chosen = append(chosen, t)
		}
	}
	v, err := w.judge(ctx, f, ev, pr, co, chosen)
	if err != nil {
		return err
	}
	if v.state != forge.Success {
		reason := "the policy is not satisfied: " + v.summary
		if len(v.details) > 0 {
			reason += "\n  - " + strings.Join(v.details, "\n  - ")
		}
		reasons = append(reasons, reason)
	}
	// 4. The pull request can be merged.
	mergeable, err := w.mergeable(ctx, f, pr)
	if err != nil {
		return err
	}
	switch {
	case mergeable == nil:
		reasons = append(reasons, "the forge has not worked out yet whether the pull request can be merged; try again in a minute")
	case !*mergeable:
		reasons = append(reasons, "the pull request cannot be merged as it is (conflicts, or blocked by the forge): fix that first")
	}
	if len(reasons) > 0 {
		return refuse(reasons...)
	}

	// 5. The plan is fresh: planned at this head, and planning again now gives the same plan.
	records, err := w.State.Plans(ctx, prKey(ev))
	if err != nil {
		return err
	}
	reviewed := map[store.Target]store.PlanRecord{}
	for _, r := range records {
		reviewed[r.Target] = r
	}
	var fresh []planned
	var stale []string
	for _, t := range targets {
		p := w.planTarget(ctx, co, t, prInfo(pr), log)
		r, ok := reviewed[t.key()]
		switch {
		case p.Plan == nil:
			reasons = append(reasons, fmt.Sprintf("%s cannot be planned now: %s", t, p.Err))
		case !ok || r.SHA != pr.HeadSHA:
			stale = append(stale, fmt.Sprintf("%s was not planned at `%s`", t, short(pr.HeadSHA)))
		case r.Hash != p.Plan.Hash():
			stale = append(stale, fmt.Sprintf("%s: the live objects changed since the plan", t))
		case p.Plan.Counts().Fail > 0:
			reasons = append(reasons, fmt.Sprintf("%s: %d object(s) would fail to apply (see the plan)", t, p.Plan.Counts().Fail))
		case len(p.Plan.Denials()) > 0:
			reasons = append(reasons, fmt.Sprintf("%s is denied by policy: %s", t, p.Plan.Denials()[0]))
		case !t.project.Apply.Force && len(conflicts(p.Plan)) > 0:
			reasons = append(reasons, fmt.Sprintf("%s would take over fields other field managers own (%s): set `apply.force: true` for project %s in .kubeplan.yaml to take them over, or leave those fields out",
				t, strings.Join(conflicts(p.Plan), "; "), t.project.Name))
		}
		fresh = append(fresh, p)
	}
	if len(reasons) > 0 {
		return refuse(reasons...)
	}
	if len(stale) > 0 {
		log.Info("plan is stale: planning again instead of applying", "why", strings.Join(stale, "; "))
		if err := w.plan(ctx, ev, selection{}); err != nil {
			return err
		}
		return reply(ctx, f, ev, "nothing was applied: the plan that was reviewed is not the plan now.\n\n- "+strings.Join(stale, "\n- ")+
			"\n\nThe plan comment shows the new plan; review it and comment `/apply` again.")
	}

	// 6. The locks: free, or already this pull request's.
	var taken []store.Target
	for _, t := range targets {
		_, heldBefore, err := w.State.LockOf(ctx, repoKey(ev), t.key())
		if err != nil {
			return err
		}
		held, acquired, err := w.State.Acquire(ctx, store.Lock{Repo: repoKey(ev), Target: t.key(), PR: prKey(ev), Number: ev.Number, Holder: ev.Sender})
		if err != nil {
			return err
		}
		if !acquired {
			reasons = append(reasons, fmt.Sprintf("%s is locked by #%d (applied by @%s on %s): it stays locked until #%d is merged or closed, or an admin runs `/unlock`",
				t, held.Number, held.Holder, held.LockedAt.UTC().Format("2006-01-02 15:04 MST"), held.Number))
			continue
		}
		if !heldBefore {
			taken = append(taken, t.key())
		}
	}
	if len(reasons) > 0 {
		for _, k := range taken { // leave no lock behind for an apply that did not happen
			if _, err := w.State.Unlock(ctx, repoKey(ev), k); err != nil {
				return err
			}
		}
		return refuse(reasons...)
	}

	if err := f.SetStatus(ctx, ev.Repo, pr.HeadSHA, forge.Status{Context: StatusApply, State: forge.Pending, Description: "Applying…"}); err != nil {
		return err
	}
	for i, t := range targets {
		if err := w.applyTarget(ctx, f, ev, pr.HeadSHA, t, fresh[i], store.BeforeMerge, ev.Sender, nil, log); err != nil {
			return err
		}
	}
	// Plan again so the plan comment and the statuses describe the state after the apply.
	return w.plan(ctx, ev, selection{})
}

// applyTarget applies one planned target, records it in the history and posts its result.
// The record is written before the cluster is touched: a crash leaves it running, and the
// next job reports it instead of applying again blindly.
func (w *Workflow) applyTarget(ctx context.Context, f Forge, ev event.Event, sha string, t target, p planned, trigger, actor string, notes []string, log *slog.Logger) error {
	post := func(a comments.Apply) error {
		a.Project, a.Cluster, a.SHA, a.Actor, a.OnMerge, a.Limit = t.project.Name, t.cluster, sha, actor, trigger == store.OnMerge, f.MaxCommentLength()
		a.Notes = append(notes, a.Notes...)
		_, err := f.CreateComment(ctx, ev.Repo, ev.Number, comments.RenderApply(a))
		return err
	}
	client, err := w.Clusters.Get(ctx, t.cluster)
	if err != nil {
		return post(comments.Apply{Err: err.Error()})
	}
	id, err := w.State.StartApply(ctx, store.ApplyRecord{PR: prKey(ev), Target: t.key(), SHA: sha, PlanHash: p.Plan.Hash(), Trigger: trigger, Actor: actor})
	if err != nil {
		return err
	}
	started := time.Now()
	observe := func(outcome string) {
		if w.ObserveApply != nil {
			w.ObserveApply(trigger, outcome, time.Since(started))
		}
	}
	res, err := w.Applier.Apply(ctx, client, applier.Request{Project: t.project.Name, Namespace: p.namespace, Objects: p.objects,
		Prune: t.project.Prune(), Force: t.project.Apply.Force, HealthTimeout: w.HealthTimeout})
	if err != nil {
		if ctx.Err() != nil {
			return err // stopped (timeout, shutdown): the record stays running and is reported next time
		}
		log.Warn("apply failed", "project", t.project.Name, "cluster", t.cluster, "err", err)
		observe(store.ApplyFailed)
		if ferr := w.State.FinishApply(ctx, id, store.ApplyFailed, err.Error()); ferr != nil {
			return ferr
		}
		return post(comments.Apply{Err: err.Error()})
	}
	state, summary := store.ApplySucceeded, summarizeApply(res)
	if res.Failed() {
		state = store.ApplyFailed
	}
	for _, o := range res.Objects {
		log.Info("applied object", "project", t.project.Name, "cluster", t.cluster, "object", o.Object.String(), "result", o.Action, "health", o.Health, "error", o.Error)
	}
	log.Info("apply finished", "project", t.project.Name, "cluster", t.cluster, "state", state, "summary", summary)
	observe(state)
	if err := w.State.FinishApply(ctx, id, state, summary); err != nil {
		return err
	}
	return post(comments.Apply{Result: res})
}

// conflicts lists the plan's field takeovers, object first.
func conflicts(p *plan.Plan) []string {
	var out []string
	for _, ch := range p.Changes {
		if ch.Conflicts {
			out = append(out, ch.Object.String()+" "+strings.Join(ch.Warnings, ", "))
		}
	}
	return out
}

func summarizeApply(r *applier.Result) string {
	s := r.Counts().String()
	if r.HealthTimedOut {
		s += ", health wait timed out"
	}
	return s
}

// mergeable asks the forge whether the pull request can be merged, waiting a little while the
// forge is still working it out (GitHub computes it lazily).
func (w *Workflow) mergeable(ctx context.Context, f Forge, pr *forge.PullRequest) (*bool, error) {
	wait := w.MergeableWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	for pr.Mergeable == nil && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
		again, err := f.PullRequest(ctx, pr.Repo, pr.Number)
		if err != nil {
			return nil, err
		}
		pr = again
	}
	return pr.Mergeable, nil
}

// applyRequirement sets kubeplan/apply on the head: pending while a project that must be
// applied before merge is not, failure when the latest apply of a target at this head failed.
func (w *Workflow) applyRequirement(ctx context.Context, f Forge, ev event.Event, pr *forge.PullRequest, targets []target) error {
	history, err := w.State.Applies(ctx, prKey(ev))
	if err != nil {
		return err
	}
	latest := map[store.Target]store.ApplyRecord{}
	for _, r := range history {
		if r.SHA == pr.HeadSHA && r.Trigger == store.BeforeMerge {
			latest[r.Target] = r
		}
	}
	var failed, missing, done []string
	for _, t := range targets {
		r, applied := latest[t.key()]
		switch {
		case applied && r.State == store.ApplyFailed:
			failed = append(failed, t.project.Name+" on "+t.cluster)
		case applied && r.State == store.ApplySucceeded:
			done = append(done, t.project.Name+" on "+t.cluster)
		case t.project.BeforeMerge() == "required":
			missing = append(missing, t.project.Name+" on "+t.cluster)
		}
	}
	st := forge.Status{Context: StatusApply}
	switch {
	case len(failed) > 0:
		st.State, st.Description = forge.Failure, "Apply failed: "+strings.Join(failed, ", ")
	case len(missing) > 0:
		st.State, st.Description = forge.Pending, "Needs /apply before merge: "+strings.Join(missing, ", ")
	case len(done) > 0:
		st.State, st.Description = forge.Success, "Applied: "+strings.Join(done, ", ")
	default:
		st.State, st.Description = forge.Success, "No project needs applying before merge"
	}
	st.Description = clip(st.Description, 140)
	return f.SetStatus(ctx, pr.Repo, pr.HeadSHA, st)
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
