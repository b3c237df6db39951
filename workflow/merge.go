package workflow

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/repoconfig"
	"github.com/kubeplan/kubeplan/store"
)

// closed handles a pull request that was merged (roll out) or closed without merging
// (release its locks and say which pre-merge applies are live but not merged).
func (w *Workflow) closed(ctx context.Context, ev event.Event) error {
	f, pr, err := w.pullRequest(ctx, ev)
	if err != nil {
		return err
	}
	if pr.Merged {
		return w.rollout(ctx, f, ev, pr)
	}
	if !pr.Closed {
		return nil // reopened since: the reopen event plans it
	}
	released, err := w.State.ReleasePR(ctx, prKey(ev))
	if err != nil {
		return err
	}
	history, err := w.State.Applies(ctx, prKey(ev))
	if err != nil {
		return err
	}
	latest := map[store.Target]store.ApplyRecord{}
	for _, r := range history {
		if r.Trigger == store.BeforeMerge && r.State != store.ApplyFailed {
			latest[r.Target] = r
		}
	}
	w.Log.Info("closed without merging", "repo", ev.Repo, "number", ev.Number, "released", len(released), "liveUnmerged", len(latest))
	if len(released) == 0 && len(latest) == 0 {
		return nil
	}
	var live []comments.Run
	for _, r := range history {
		if l, ok := latest[r.Target]; ok && l.ID == r.ID {
			live = append(live, comments.Run{Where: comments.Where{Project: r.Project, Cluster: r.Cluster}, SHA: r.SHA, Actor: r.Actor, State: r.State})
		}
	}
	_, err = f.CreateComment(ctx, ev.Repo, ev.Number, comments.ClosedUnmerged(lockWheres(released), live))
	return err
}

// rollout applies the merged commit to every affected project × cluster that rolls out on
// merge, posts each result and releases the pull request's locks.
func (w *Workflow) rollout(ctx context.Context, f Forge, ev event.Event, pr *forge.PullRequest) error {
	sha := pr.MergeCommitSHA
	if sha == "" {
		return fmt.Errorf("roll out %s#%d: the forge gave no merge commit", pr.Repo, pr.Number)
	}
	log := w.Log.With("repo", ev.Repo, "number", ev.Number, "merge", sha)
	interrupted, err := w.State.Interrupted(ctx, prKey(ev))
	if err != nil {
		return err
	}
	var notes []string
	for _, r := range interrupted {
		notes = append(notes, comments.ResumedNote(r.SHA, r.Trigger))
	}
	// A roll-out that ran before for this merge (the job is running again): post what it could
	// not, and do not apply again what it finished.
	if err := w.postReports(ctx, f, ev); err != nil {
		return err
	}
	applies, err := w.State.Applies(ctx, prKey(ev))
	if err != nil {
		return err
	}
	st := statuses{f: f, repo: pr.Repo, sha: sha}
	co, err := w.checkout(ctx, f, ev, pr, sha)
	var cfgErr *repoconfig.Error
	if errors.As(err, &cfgErr) {
		_ = st.apply(ctx, forge.Failure, "Not rolled out: "+cfgErr.Error())
		_, err := f.CreateComment(ctx, ev.Repo, ev.Number, comments.RolloutBadConfig(cfgErr.Error()))
		return err
	}
	if err != nil {
		return err
	}
	targets := co.targets(w.Clusters.Registry().Default, selection{}, func(p repoconfig.Project) bool { return p.OnMerge() })
	// A merge rolls out only what /apply would have applied: the merger must have the apply
	// role and the approvals must hold, or branch protection switched off (or an admin's
	// bypass) would let anyone with merge rights deploy.
	merger := pr.MergedBy
	if merger == "" {
		merger = ev.Sender
	}
	refused, verdicts, err := w.rolloutRefusals(ctx, f, ev, pr, co, targets, merger)
	if err != nil {
		return err
	}
	if len(targets) > 0 {
		if err := st.apply(ctx, forge.Pending, "Rolling out…"); err != nil {
			return err
		}
	}
	steps := rolloutPlan(targets, applies, ev.Delivery, refused)
	run := applyRun{f: f, ev: ev, sha: sha, trigger: store.OnMerge, actor: ev.Sender, notes: notes, log: log,
		entry: entryOf(history.Rollout, ev, pr, sha, merger), verdicts: verdicts}
	results, err := w.applyAll(ctx, run, targets, func(i int, _ target) (step, error) {
		return w.prepareRollout(ctx, run, pr, co, steps[i], merger)
	})
	if err != nil {
		return err
	}
	if applies, err = w.State.Applies(ctx, prKey(ev)); err != nil {
		return err
	}
	failed := rolloutFailures(targets, results, applies, sha)
	released, err := w.State.ReleasePR(ctx, prKey(ev))
	if err != nil {
		return err
	}
	if len(released) > 0 {
		if _, err := f.CreateComment(ctx, ev.Repo, ev.Number, comments.LocksReleased(lockWheres(released))); err != nil {
			return err
		}
	}
	log.Info("rolled out", "targets", len(targets), "failed", len(failed), "released", len(released))
	if state, desc, set := rolloutStatus(len(targets), failed); set {
		return st.apply(ctx, state, desc)
	}
	return nil
}

// prepareRollout is a roll-out's step for one target, in its turn: skipped when done before,
// refused as rolloutPlan decided, blocked while another pull request holds its lock or when
// its plan now cannot be applied (no plan, a deny rule, a destructive deletion not allowed),
// and otherwise applied.
func (w *Workflow) prepareRollout(ctx context.Context, run applyRun, pr *forge.PullRequest, co *checkout, s rolloutStep, merger string) (step, error) {
	ev, t, sha := run.ev, s.target, run.sha
	tlog := run.log.With("project", t.project.Name, "cluster", t.cluster)
	switch {
	case s.done:
		return step{skip: true}, nil
	case len(s.refused) > 0:
		tlog.Info("not rolled out: the policy is not satisfied", "merger", merger, "reasons", strings.Join(s.refused, "; "))
		return step{refusal: &refusal{actor: merger, summary: "refused: " + s.refused[0], report: comments.RolloutRefused(t.where(), sha, s.refused)}}, nil
	}
	// Hold the lock while rolling out, so no other pull request's /apply runs beside it.
	lock, acquired, err := w.State.Acquire(ctx, store.Lock{Repo: repoKey(ev), Target: t.key(), PR: prKey(ev), Number: ev.Number, Holder: ev.Sender})
	if err != nil {
		return step{}, err
	}
	if !acquired {
		// Another pull request's pre-merge apply is live there: rolling out now would undo it.
		// Its own merge rolls out a commit that contains this one.
		tlog.Info("not rolled out: locked by another pull request", "holder", lock.Number)
		return step{blocked: comments.RolloutLocked(t.where(), textLock(lock)),
			why: fmt.Sprintf("not rolled out: #%d (%s) holds it locked", lock.Number, lock.Holder)}, nil
	}
	p := w.planTarget(ctx, co, t, prInfo(pr), tlog)
	if p.plan == nil {
		return step{blocked: comments.RolloutUnplanned(t.where(), sha, p.err), why: "not rolled out: cannot plan: " + p.err}, nil
	}
	if d := p.plan.Denials(); len(d) > 0 {
		return step{blocked: comments.RolloutDenied(t.where(), sha, d), why: "not rolled out: denied: " + strings.Join(d, "; ")}, nil
	}
	why, err := w.destructiveRefusal(ctx, run.f, ev, pr, co, t, p.plan)
	if err != nil {
		return step{}, err
	}
	if why != "" {
		return step{blocked: comments.RolloutDestructive(t.where(), sha, why), why: "not rolled out: " + why}, nil
	}
	return step{plan: p}, nil
}

// rolloutRefusals checks each target of a roll-out as /apply would: the merger's apply role
// (under every name the project has, see policyTarget) and the approval rules on the merged
// head. It returns the reasons not to roll out, per target. A merge by an app's account (a
// merge queue, a merge bot) names no person whose role could be checked: it rolls out only if
// kubeplan checked that very commit as this pull request's merge group and the policy held,
// the role of whoever queued it included. verdicts are the policy's per target, for the
// history.
func (w *Workflow) rolloutRefusals(ctx context.Context, f Forge, ev event.Event, pr *forge.PullRequest, co *checkout, targets []target, merger string) (out map[store.Target][]string, verdicts map[store.Target]verdict, err error) {
	out, verdicts = map[store.Target][]string{}, map[store.Target]verdict{}
	if len(targets) == 0 {
		return out, verdicts, nil
	}
	refuse := func(t target, reason string) { out[t.key()] = append(out[t.key()], reason) }
	if pr.MergedByBot {
		check, found, err := w.State.MergeGroup(ctx, prKey(ev), pr.MergeCommitSHA)
		if err != nil {
			return nil, nil, err
		}
		if !found || !check.Passed {
			reason := comments.MergedByApp(merger, pr.MergeCommitSHA, found, check.Summary)
			for _, t := range targets {
				refuse(t, reason)
			}
		}
	} else {
		perm, err := f.Permission(ctx, ev.Repo, merger)
		if err != nil {
			return nil, nil, err
		}
		for _, t := range targets {
			id := co.policyTarget(t.project.Name, t.cluster)
			err := co.policy.AuthorizeRequest(ctx, f, policy.Request{User: merger, Permission: perm, Repo: ev.Repo,
				Project: t.project.Name, Cluster: t.cluster, Was: id.Was, New: id.New, Need: policy.RoleApply, Command: "roll out"})
			if refusal, ok := policy.IsRefusal(err); ok {
				refuse(t, refusal.Message)
			} else if err != nil {
				return nil, nil, err
			}
		}
	}
	for _, t := range targets {
		v, err := w.judge(ctx, f, ev, pr, co, []planned{{target: t}}, selection{project: t.project.Name, cluster: t.cluster})
		if err != nil {
			return nil, nil, err
		}
		verdicts[t.key()] = v
		if v.state != forge.Success {
			refuse(t, comments.PolicyUnmet(pr.HeadSHA, v.summary, v.details))
		}
	}
	return out, verdicts, nil
}
