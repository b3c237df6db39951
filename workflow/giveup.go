package workflow

import (
	"context"
	"fmt"
	"strings"

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
	var what string
	switch ev.Kind {
	case event.PullRequest:
		what = fmt.Sprintf("the %s event of this pull request", ev.Action)
		if ev.HeadSHA != "" {
			what += fmt.Sprintf(" (head %.7s)", ev.HeadSHA)
		}
	case event.Comment:
		first, _, _ := strings.Cut(strings.TrimSpace(ev.CommentBody), "\n")
		what = fmt.Sprintf("`%s` from @%s", clip(strings.ReplaceAll(first, "`", "'"), 80), ev.Sender)
	default:
		what = fmt.Sprintf("the %s %s by @%s", ev.Kind, ev.Action, ev.Sender)
	}
	body := fmt.Sprintf("kubeplan gave up on %s: %s.\n\nSomething in this pull request may make kubeplan crash or hang; "+
		"kubeplan's log names the job. Push a new commit or comment `/plan` to try again.", what, reason)
	if _, err := f.CreateComment(ctx, ev.Repo, ev.Number, body); err != nil {
		return err
	}
	if ev.Kind == event.PullRequest && ev.HeadSHA != "" && !ev.Closed && !ev.Merged {
		return f.SetStatus(ctx, ev.Repo, ev.HeadSHA, forge.Status{Context: StatusPlan, State: forge.Error,
			Description: clip("kubeplan gave up: "+reason.Error(), 140)})
	}
	return nil
}
