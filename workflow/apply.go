package workflow

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/outcome"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/repoconfig"
	"github.com/kubeplan/kubeplan/store"
)

// applyRequest is one /apply being checked: the pull request, its checkout and the targets
// the command selected.
type applyRequest struct {
	ev      event.Event
	f       Forge
	pr      *forge.PullRequest
	co      *checkout
	sel     selection
	targets []target
	log     *slog.Logger
}

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
		return reply(ctx, f, ev, comments.Refused("apply", reasons))
	}
	if pr.Closed {
		return refuse(comments.ApplyClosed)
	}
	if reported, err := w.reportInterrupted(ctx, f, ev, log); reported || err != nil {
		return err
	}
	// This /apply ran before and the job is running again (its result comment or the re-plan
	// after it hit a forge outage): finish what is left, never apply twice.
	if ran, err := w.ranBefore(ctx, ev); ran || err != nil {
		if err != nil {
			return err
		}
		log.Info("this /apply already ran: posting what is left of it")
		if err := w.postReports(ctx, f, ev); err != nil {
			return err
		}
		return w.plan(ctx, ev, selection{})
	}
	co, err := w.checkout(ctx, f, ev, pr, pr.HeadSHA)
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
		return refuse(comments.NoMatch(sel.String(), wheres(all)))
	}
	req := applyRequest{ev: ev, f: f, pr: pr, co: co, sel: sel, targets: targets, log: log}

	// Every refusal from here on names its targets: it is in the history, with the policy's
	// verdict and the approvals as they stood, and the plan now once there is one.
	entry := entryOf(history.Apply, ev, pr, pr.HeadSHA, ev.Sender)
	var fresh []planned
	refuseTargets := func(reasons ...string) error {
		w.recordRefused(ctx, entry, targets, fresh, "refused: "+strings.Join(reasons, "; "))
		return refuse(reasons...)
	}
	// 1–4: role, apply before merge allowed, policy, mergeable.
	reasons, v, err := w.preconditions(ctx, req)
	if err != nil {
		return err
	}
	entry = judged(entry, v)
	if len(reasons) > 0 {
		return refuseTargets(reasons...)
	}
	// 5: the plan is fresh; what is applied is exactly what is planned now.
	fresh, stale, reasons, err := w.freshPlans(ctx, req)
	if err != nil {
		return err
	}
	if len(reasons) > 0 {
		return refuseTargets(reasons...)
	}
	if len(stale) > 0 {
		log.Info("plan is stale: planning again instead of applying", "why", strings.Join(stale, "; "))
		w.recordRefused(ctx, entry, targets, fresh, "refused: the plan that was reviewed is not the plan now: "+strings.Join(stale, "; "))
		if err := w.plan(ctx, ev, selection{}); err != nil {
			return err
		}
		return reply(ctx, f, ev, comments.Stale(stale))
	}
	// 6: destructive deletions need the project's yes and a covering approval rule that is met.
	if reasons, err = w.destructiveRefusals(ctx, req, fresh); err != nil {
		return err
	}
	if len(reasons) > 0 {
		return refuseTargets(reasons...)
	}
	// 7: the locks.
	if reasons, err = w.takeLocks(ctx, req); err != nil {
		return err
	}
	if len(reasons) > 0 {
		return refuseTargets(reasons...)
	}

	if err := (statuses{f: f, repo: ev.Repo, sha: pr.HeadSHA}).apply(ctx, forge.Pending, "Applying…"); err != nil {
		return err
	}
	run := applyRun{f: f, ev: ev, sha: pr.HeadSHA, trigger: store.BeforeMerge, actor: ev.Sender, log: log, entry: entry}
	if _, err := w.applyAll(ctx, run, targets, func(i int, _ target) (step, error) { return step{plan: fresh[i]}, nil }); err != nil {
		return err
	}
	// Plan again so the plan comment and the statuses describe the state after the apply.
	return w.plan(ctx, ev, selection{})
}

// reportInterrupted finds applies a crash left running: they are re-planned and reported,
// never re-run blindly. reported is true when there were some.
func (w *Workflow) reportInterrupted(ctx context.Context, f Forge, ev event.Event, log *slog.Logger) (reported bool, err error) {
	interrupted, err := w.State.Interrupted(ctx, prKey(ev))
	if err != nil || len(interrupted) == 0 {
		return false, err
	}
	var which []comments.Run
	for _, r := range interrupted {
		which = append(which, comments.Run{Where: comments.Where{Project: r.Project, Cluster: r.Cluster}, SHA: r.SHA, Actor: r.Actor})
	}
	log.Warn("interrupted apply found: planning again instead of applying", "applies", comments.Runs(which))
	if err := w.plan(ctx, ev, selection{}); err != nil {
		return true, err
	}
	return true, reply(ctx, f, ev, comments.Interrupted(which))
}

// preconditions checks the commenter's role, the projects' before-merge mode, the policy and
// mergeability, and returns every reason to refuse, and the policy's verdict.
func (w *Workflow) preconditions(ctx context.Context, r applyRequest) ([]string, verdict, error) {
	var reasons []string
	perm, err := r.f.Permission(ctx, r.ev.Repo, r.ev.Sender)
	if err != nil {
		return nil, verdict{}, err
	}
	for _, t := range r.targets {
		id := r.co.policyTarget(t.project.Name, t.cluster)
		err := r.co.policy.AuthorizeRequest(ctx, r.f, policy.Request{User: r.ev.Sender, Permission: perm, Repo: r.ev.Repo,
			Project: t.project.Name, Cluster: t.cluster, Was: id.Was, New: id.New, Need: policy.RoleApply, Command: "/apply", PermissionName: r.f.PermissionName})
		if refusal, ok := policy.IsRefusal(err); ok {
			reasons = append(reasons, refusal.Message)
		} else if err != nil {
			return nil, verdict{}, err
		}
	}
	for _, t := range r.targets {
		if t.project.BeforeMerge() == "disabled" {
			reasons = append(reasons, comments.NotBeforeMerge(t.where()))
		}
	}
	stored, err := w.storedTargets(ctx, r.ev, r.co, r.pr.HeadSHA)
	if err != nil {
		return nil, verdict{}, err
	}
	var chosen []planned
	for _, t := range stored {
		if r.sel.matches(t.project.Name, t.cluster) {
			chosen = append(chosen, t)
		}
	}
	v, err := w.judge(ctx, r.f, r.ev, r.pr, r.co, chosen, r.sel)
	if err != nil {
		return nil, verdict{}, err
	}
	if v.state != forge.Success {
		reasons = append(reasons, comments.PolicyUnmet("", v.summary, v.details))
	}
	mergeable, err := w.mergeable(ctx, r.f, r.pr)
	if err != nil {
		return nil, verdict{}, err
	}
	switch {
	case mergeable == nil:
		reasons = append(reasons, comments.MergeableUnknown)
	case !*mergeable:
		reasons = append(reasons, comments.NotMergeable)
	}
	return reasons, v, nil
}

// freshPlans plans every target again now and checks each plan against the reviewed one
// (applyFreshness): stale targets are planned again, the others named in reasons refused.
func (w *Workflow) freshPlans(ctx context.Context, r applyRequest) (fresh []planned, stale, reasons []string, err error) {
	records, err := w.State.Plans(ctx, prKey(r.ev))
	if err != nil {
		return nil, nil, nil, err
	}
	fresh = w.planTargets(ctx, r.co, r.targets, prInfo(r.pr), r.log)
	stale, reasons = applyFreshness(fresh, records, r.pr.HeadSHA)
	return fresh, stale, reasons, nil
}

// applyCheckText says why /apply plans a target again or refuses it (see applyCheck).
func applyCheckText(p planned, c planCheck, head string) string {
	switch c {
	case planUnplannable:
		return comments.CannotPlanNow(p.where(), p.err)
	case planNotReviewed:
		return comments.NotPlannedAt(p.where(), head)
	case planChanged:
		return comments.LiveChanged(p.where())
	case planFailing:
		return comments.WouldFail(p.where(), p.plan.Counts().Fail)
	case planDenied:
		return comments.DeniedBy(p.where(), p.plan.Denials()[0])
	case planConflicting:
		return comments.TakesOver(p.where(), conflicts(p.plan))
	}
	return ""
}

// takeLocks takes each target's lock for the pull request. When another pull request holds
// one, the locks taken here are released again and the holders named.
func (w *Workflow) takeLocks(ctx context.Context, r applyRequest) ([]string, error) {
	var reasons []string
	var taken []store.Target
	for _, t := range r.targets {
		// A project renamed by the pull request is still the project another pull request may
		// hold locked under its base-branch name.
		for _, was := range r.co.policyTarget(t.project.Name, t.cluster).Was {
			if was.Cluster != t.cluster {
				continue
			}
			held, locked, err := w.State.LockOf(ctx, repoKey(r.ev), store.Target{Project: was.Project, Cluster: was.Cluster})
			if err != nil {
				return nil, err
			}
			if locked && held.PR != prKey(r.ev) {
				reasons = append(reasons, comments.LockedOnBase(t.where(), comments.Lock{Where: comments.Where{Project: was.Project, Cluster: was.Cluster}, Number: held.Number, Holder: held.Holder}))
			}
		}
		_, heldBefore, err := w.State.LockOf(ctx, repoKey(r.ev), t.key())
		if err != nil {
			return nil, err
		}
		held, acquired, err := w.State.Acquire(ctx, store.Lock{Repo: repoKey(r.ev), Target: t.key(), PR: prKey(r.ev), Number: r.ev.Number, Holder: r.ev.Sender})
		if err != nil {
			return nil, err
		}
		if !acquired {
			reasons = append(reasons, comments.LockedBy(t.where(), textLock(held)))
			continue
		}
		if !heldBefore {
			taken = append(taken, t.key())
		}
	}
	if len(reasons) > 0 {
		for _, k := range taken { // leave no lock behind for an apply that did not happen
			if _, err := w.State.Unlock(ctx, repoKey(r.ev), k); err != nil {
				return nil, err
			}
		}
	}
	return reasons, nil
}

// applyRun is one run of the apply-and-report loop (applyAll): an /apply, or a merge's roll-out.
type applyRun struct {
	f       Forge
	ev      event.Event
	sha     string // the commit applied: the pull request's head, or the merge commit
	trigger string // store.BeforeMerge or store.OnMerge
	actor   string // recorded as who applied
	notes   []string
	log     *slog.Logger
	// entry is what the run's history entries share; verdicts, when set, are the policy's
	// per target (a roll-out judges each on its own).
	entry    history.Entry
	verdicts map[store.Target]verdict
}

// entryFor is the start of the history entry of target t in this run.
func (r applyRun) entryFor(t target) history.Entry {
	if v, ok := r.verdicts[t.key()]; ok {
		return judged(r.entry, v)
	}
	return r.entry
}

// step is what an apply run does with one target: apply plan, unless it is to be skipped,
// refused or blocked.
type step struct {
	skip bool // nothing to do (done by an earlier run)
	// refusal is recorded as a refused apply and its report posted; nothing is applied.
	refusal *refusal
	// blocked is posted as a comment instead of applying; nothing is recorded in the applies,
	// the history says why (one line).
	blocked, why string
	plan         planned
}

// refusal is an apply the policy refused, as the history records it.
type refusal struct {
	actor, summary, report string
}

// notApplied is applyAll's result for a blocked target.
const notApplied = "not applied"

// applyAll is the apply-and-report loop of /apply and of the roll-out on merge. Each target's
// step comes from prepare, called in the target's turn: clusters side by side, a cluster's
// targets one after another in order (byCluster). Every apply and refusal is recorded in the
// history and its report posted as soon as it is there. results[i] is what became of
// targets[i]: the apply's state (store.ApplySucceeded or ApplyFailed), store.ApplyRefused,
// notApplied, or "" when skipped.
func (w *Workflow) applyAll(ctx context.Context, run applyRun, targets []target, prepare func(i int, t target) (step, error)) ([]string, error) {
	results := make([]string, len(targets))
	var posting sync.Mutex
	post := func() error {
		posting.Lock() // one poster at a time, or two could post the same result
		defer posting.Unlock()
		return w.postReports(ctx, run.f, run.ev)
	}
	err := byCluster(targets, func(i int, t target) error {
		s, err := prepare(i, t)
		if err != nil {
			return err
		}
		switch {
		case s.skip:
			return nil
		case s.refusal != nil:
			results[i] = store.ApplyRefused
			if err := w.recordRefusal(ctx, run, t, *s.refusal); err != nil {
				return err
			}
			return post()
		case s.blocked != "":
			results[i] = notApplied
			w.record(ctx, refusedEntry(run.entryFor(t), t, nil, s.why))
			_, err := run.f.CreateComment(ctx, run.ev.Repo, run.ev.Number, s.blocked)
			return err
		}
		state, err := w.applyTarget(ctx, run, s.plan)
		if err != nil {
			return err
		}
		results[i] = state
		return post()
	})
	return results, err
}

// recordRefusal records a target the policy keeps from being applied, with the report that
// says so; applyAll posts it.
func (w *Workflow) recordRefusal(ctx context.Context, run applyRun, t target, r refusal) error {
	id, err := w.State.StartApply(ctx, store.ApplyRecord{PR: prKey(run.ev), Target: t.key(), SHA: run.sha, Trigger: run.trigger, Actor: r.actor, Delivery: run.ev.Delivery})
	if err != nil {
		return err
	}
	w.record(ctx, refusedEntry(run.entryFor(t), t, nil, r.summary))
	return w.State.FinishApply(ctx, id, store.ApplyRefused, r.summary, r.report)
}

// recordRefused writes a refused history entry for each target of an /apply that was
// refused; plans, when there are, are the targets' plans now (by index).
func (w *Workflow) recordRefused(ctx context.Context, entry history.Entry, targets []target, plans []planned, why string) {
	for i, t := range targets {
		var p *plan.Plan
		if i < len(plans) {
			p = plans[i].plan
		}
		w.record(ctx, refusedEntry(entry, t, p, why))
	}
}

// applyTarget applies one planned target and records it in the history; applyAll posts the
// result (postReports). The record is written before the cluster is touched: a crash leaves it
// running, and the next job reports it instead of applying again blindly. The result comment
// is stored with the outcome before it is posted, so a forge outage delays it but does not
// lose it. It returns the apply's state.
func (w *Workflow) applyTarget(ctx context.Context, run applyRun, p planned) (string, error) {
	t, ev, log := p.target, run.ev, run.log
	id, err := w.State.StartApply(ctx, store.ApplyRecord{PR: prKey(ev), Target: t.key(), SHA: run.sha, PlanHash: p.plan.Hash(), Trigger: run.trigger, Actor: run.actor, Delivery: ev.Delivery})
	if err != nil {
		return "", err
	}
	started := time.Now()
	state, summary, failure := store.ApplyFailed, "", ""
	var res, done *outcome.Result // done: what was applied, even when the apply stopped
	client, err := w.Clusters.Get(ctx, t.cluster)
	if err == nil {
		res, err = w.Applier.Apply(ctx, client, applier.Request{Project: t.project.Name, Namespace: p.namespace, Objects: p.objects,
			Prune: t.project.Prune(), Force: t.project.Apply.Force, HealthTimeout: w.HealthTimeout,
			Repository: repoKey(ev), Scope: p.grant, AllowDestructive: t.project.Apply.AllowDestructive})
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return "", err // stopped (timeout, shutdown): the record stays running and is reported next time
	case err != nil:
		log.Warn("apply failed", "project", t.project.Name, "cluster", t.cluster, "err", err)
		// What the applier did before it stopped goes into the history; the comment says why it stopped.
		done = w.redacted(res, log, t)
		res, failure, summary = nil, w.public(err), w.public(err)
	default:
		res = w.redacted(res, log, t)
		done = res
		summary = summarizeApply(res)
		if !res.Failed() {
			state = store.ApplySucceeded
		}
	}
	log.Info("apply finished", "project", t.project.Name, "cluster", t.cluster, "state", state, "summary", summary)
	if w.ObserveApply != nil {
		w.ObserveApply(run.trigger, state, time.Since(started))
	}
	report := applyComment(t, run.sha, run.actor, run.trigger == store.OnMerge, run.notes, res, failure, run.f.MaxCommentLength())
	w.record(ctx, applyEntry(run.entryFor(t), p, state, summary, done, failure))
	return state, w.State.FinishApply(ctx, id, state, summary, report)
}

// redacted is res (nil stays nil) with the clusters' addresses and credentials taken out of
// its errors, health messages and notes, each object logged as it was.
func (w *Workflow) redacted(res *outcome.Result, log *slog.Logger, t target) *outcome.Result {
	if res == nil {
		return nil
	}
	for i, o := range res.Objects {
		log.Info("applied object", "project", t.project.Name, "cluster", t.cluster, "object", o.Object.String(), "result", o.Action, "health", o.Health, "error", o.Error)
		res.Objects[i].Error = w.Clusters.Redact(o.Error)
		res.Objects[i].HealthMessage = w.Clusters.Redact(o.HealthMessage)
	}
	for i, n := range res.Notes {
		res.Notes[i] = w.Clusters.Redact(n)
	}
	return res
}

// applyComment is an apply's result comment: the one place where an apply of a target
// becomes package comments' input. res is nil when failure says why nothing was applied.
func applyComment(t target, sha, actor string, onMerge bool, notes []string, res *outcome.Result, failure string, limit int) string {
	return comments.RenderApply(comments.Apply{Project: t.project.Name, Cluster: t.cluster, SHA: sha, Actor: actor, OnMerge: onMerge,
		Notes: notes, Result: res, Err: failure, Limit: limit})
}

// postReports posts the result comments of the pull request's finished applies that are not on
// it yet, oldest first.
func (w *Workflow) postReports(ctx context.Context, f Forge, ev event.Event) error {
	history, err := w.State.Applies(ctx, prKey(ev))
	if err != nil {
		return err
	}
	for _, r := range history {
		if r.Reported || r.Report == "" || r.State == store.ApplyRunning {
			continue
		}
		if _, err := f.CreateComment(ctx, ev.Repo, ev.Number, r.Report); err != nil {
			return err
		}
		if err := w.State.MarkReported(ctx, r.ID); err != nil {
			return err
		}
	}
	return nil
}

// ranBefore reports whether this delivery (an /apply comment, a merge) already applied
// something: its job is running again.
func (w *Workflow) ranBefore(ctx context.Context, ev event.Event) (bool, error) {
	if ev.Delivery == "" {
		return false, nil
	}
	history, err := w.State.Applies(ctx, prKey(ev))
	if err != nil {
		return false, err
	}
	return appliedBefore(history, ev.Delivery), nil
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

func summarizeApply(r *outcome.Result) string {
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
	st, err := w.applyStatus(ctx, ev, pr, targets)
	if err != nil {
		return err
	}
	return statuses{f: f, repo: pr.Repo, sha: pr.HeadSHA}.set(ctx, st)
}

// applyStatus is kubeplan/apply for the pull request's head (see applyRequirement).
func (w *Workflow) applyStatus(ctx context.Context, ev event.Event, pr *forge.PullRequest, targets []target) (forge.Status, error) {
	history, err := w.State.Applies(ctx, prKey(ev))
	if err != nil {
		return forge.Status{}, err
	}
	return progressOf(history, pr.HeadSHA, targets).status(), nil
}
