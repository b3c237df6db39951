package workflow

import (
	"context"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
)

// GaveUp tells a pull request that kubeplan gave up on one of its events: every attempt at it
// stopped kubeplan (a crash, a kill, a hang), so it is not tried again. It only comments and,
// for a push, marks the plan status of that commit as an error; it reads nothing of the pull
// request's content, which may be what stops kubeplan.
func (w *Workflow) GaveUp(ctx context.Context, ev event.Event, reason error) error {
	f, err := w.Forges(ctx, ev)
	if err != nil {
		return err
	}
	body := comments.GaveUp(comments.GiveUp{Kind: string(ev.Kind), Action: string(ev.Action), HeadSHA: ev.HeadSHA, Comment: ev.CommentBody,
		Sender: ev.Sender, Reason: reason.Error()})
	if _, err := f.CreateComment(ctx, ev.Repo, ev.Number, body); err != nil {
		return err
	}
	if ev.Kind == event.PullRequest && ev.HeadSHA != "" && !ev.Closed && !ev.Merged {
		return statuses{f: f, repo: ev.Repo, sha: ev.HeadSHA}.plan(ctx, forge.Error, "kubeplan gave up: "+reason.Error())
	}
	return nil
}
