package workflow

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
		what := "this pull request holds no lock"
		if sel != (selection{}) {
			what = "no lock matches " + sel.String()
		}
		if len(locks) > 0 {
			var held []string
			for _, l := range locks {
				held = append(held, fmt.Sprintf("`%s` on `%s` by #%d", l.Project, l.Cluster, l.Number))
			}
			what += ". Locks held in this repository: " + strings.Join(held, ", ")
		}
		return reply(ctx, f, ev, what+".")
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
				msg = fmt.Sprintf("`%s` on `%s` is held by #%d; releasing another pull request's lock needs the admin role: %s", l.Project, l.Cluster, l.Number, refusal.Message)
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
			if _, err := f.CreateComment(ctx, ev.Repo, l.Number, fmt.Sprintf("@%s kubeplan's lock of this pull request on `%s` on `%s` was released by @%s from #%d. What this pull request applied there stays live until something else is applied.",
				l.Holder, l.Project, l.Cluster, ev.Sender, ev.Number)); err != nil {
				return err
			}
		}
	}
	var b strings.Builder
	if len(released) > 0 {
		fmt.Fprintf(&b, "released %s.", describeLocks(released))
	}
	if len(refused) > 0 {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString("`/unlock` refused:\n\n- " + strings.Join(refused, "\n- "))
	}
	return reply(ctx, f, ev, b.String())
}

// lockNotes tell a plan's readers which of its targets are locked, and by whom.
func (w *Workflow) lockNotes(ctx context.Context, ev event.Event, targets []target) ([]string, error) {
	var notes []string
	for _, t := range targets {
		l, held, err := w.State.LockOf(ctx, repoKey(ev), t.key())
		if err != nil {
			return nil, err
		}
		switch {
		case !held:
		case l.PR == prKey(ev):
			notes = append(notes, fmt.Sprintf("🔒 %s is locked by this pull request (applied by @%s) until it is merged or closed.", t, l.Holder))
		default:
			notes = append(notes, fmt.Sprintf("🔒 %s is locked by #%d (applied by @%s): `/apply` there waits until #%d is merged or closed, or an admin runs `/unlock -p %s -c %s`.",
				t, l.Number, l.Holder, l.Number, t.project.Name, t.cluster))
		}
	}
	return notes, nil
}
