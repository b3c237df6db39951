package workflow

import (
	"context"
	"errors"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/store"
)

// unlock runs /unlock: without -p/-c it releases this pull request's locks; with them, the
// matching locks in the repository. Releasing another pull request's lock needs the admin role.
func (w *Workflow) unlock(ctx context.Context, f Forge, ev event.Event, sel selection) error {
	locks, err := w.State.Locks(ctx, repoKey(ev))
	if err != nil {
		return err
	}
	var chosen []store.Lock
	for _, l := range locks {
		if (sel == selection{} && l.PR == prKey(ev)) || (sel != selection{} && sel.matches(l.Project, l.Cluster)) {
			chosen = append(chosen, l)
		}
	}
	if len(chosen) == 0 {
		what := ""
		if sel != (selection{}) {
			what = sel.String()
		}
		var held []comments.Lock
		for _, l := range locks {
			held = append(held, textLock(l))
		}
		return reply(ctx, f, ev, comments.NoLock(what, held))
	}
	// Roles come from the server's policy only: a repository cannot widen them.
	pol := w.Policy
	perm, err := f.Permission(ctx, ev.Repo, ev.Sender)
	if err != nil {
		return err
	}
	var released []store.Lock
	var refused []string
	for _, l := range chosen {
		need := policy.RoleApply
		if l.PR != prKey(ev) {
			need = policy.RoleAdmin
		}
		if err := pol.AuthorizeRequest(ctx, f, policy.Request{User: ev.Sender, Permission: perm, Repo: ev.Repo,
			Project: l.Project, Cluster: l.Cluster, Need: need, Command: "/unlock", PermissionName: f.PermissionName}); err != nil {
			var refusal *policy.Refusal
			if !errors.As(err, &refusal) {
				return err
			}
			msg := refusal.Message
			if need == policy.RoleAdmin {
				msg = comments.UnlockNeedsAdmin(textLock(l), refusal.Message)
			}
			refused = append(refused, msg)
			continue
		}
		if _, err := w.State.Unlock(ctx, repoKey(ev), l.Target); err != nil {
			return err
		}
		released = append(released, l)
		w.Log.Info("lock released", "repo", ev.Repo, "project", l.Project, "cluster", l.Cluster, "holder", l.Number, "by", ev.Sender)
		if l.PR != prKey(ev) {
			if _, err := f.CreateComment(ctx, ev.Repo, l.Number, comments.LockReleased(textLock(l), ev.Sender, ev.Number)); err != nil {
				return err
			}
		}
	}
	return reply(ctx, f, ev, comments.Unlocked(lockWheres(released), refused))
}

// textLock is a lock as texts tell of it.
func textLock(l store.Lock) comments.Lock {
	return comments.Lock{Where: comments.Where{Project: l.Project, Cluster: l.Cluster}, Number: l.Number, Holder: l.Holder, LockedAt: l.LockedAt}
}

// lockWheres names the locks' targets for texts.
func lockWheres(locks []store.Lock) []comments.Where {
	out := make([]comments.Where, len(locks))
	for i, l := range locks {
		out[i] = textLock(l).Where
	}
	return out
}

// lockNotes tell a plan's readers which of its targets are locked, and by whom.
func (w *Workflow) lockNotes(ctx context.Context, ev event.Event, targets []target) ([]string, error) {
	var notes []string
	for _, t := range targets {
		l, held, err := w.State.LockOf(ctx, repoKey(ev), t.key())
		if err != nil {
			return nil, err
		}
		if held {
			notes = append(notes, comments.LockNote(t.where(), textLock(l), l.PR == prKey(ev)))
		}
	}
	return notes, nil
}
