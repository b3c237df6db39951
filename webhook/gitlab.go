package webhook

import (
	"crypto/subtle"
	"log/slog"
	"net/http"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
)

// GitLab receives GitLab webhooks.
type GitLab struct {
	// Token is the webhook's secret token, sent by GitLab in X-Gitlab-Token.
	Token   []byte
	Queue   Enqueuer
	MaxBody int64
	Log     *slog.Logger
}

func (h *GitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The token is checked before the body is read: a forged request costs nothing.
	if len(h.Token) == 0 || subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Gitlab-Token")), h.Token) != 1 {
		h.Log.Warn("gitlab webhook refused: bad or missing token", "remote", r.RemoteAddr)
		http.Error(w, "token does not match", http.StatusUnauthorized)
		return
	}
	body, ok := readBody(w, r, bodyLimit(h.MaxBody))
	if !ok {
		return
	}
	kind := gitlab.HookEventType(r)
	parsed, err := gitlab.ParseWebhook(kind, body)
	if err != nil {
		if kind == gitlab.EventTypeMergeRequest || kind == gitlab.EventTypeNote {
			http.Error(w, "malformed "+string(kind)+" payload", http.StatusBadRequest)
			return
		}
		ignore(w, "event "+string(kind))
		return
	}
	ev, why := gitlabEvent(parsed)
	if why != "" {
		ignore(w, why)
		return
	}
	ev.Forge, ev.Delivery = event.GitLab, gitlabDelivery(r.Header)
	enqueue(w, r, h.Queue, h.Log, ev)
}

// gitlabDelivery names a delivery by what stays the same when GitLab sends it again: the
// Idempotency-Key (GitLab 17.4 and later), which its automatic retries and "Resend request"
// keep, while they send a new X-Gitlab-Event-UUID and X-Gitlab-Webhook-UUID. Older versions
// send no such key; their resends cannot be recognised, and the event UUID names the delivery.
func gitlabDelivery(h http.Header) string {
	for _, k := range []string{"Idempotency-Key", "X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// gitlabEvent reduces a parsed GitLab payload to an event, or says why it is ignored.
func gitlabEvent(parsed any) (event.Event, string) {
	switch e := parsed.(type) {
	case *gitlab.MergeEvent:
		a := e.ObjectAttributes
		kind, action := gitlabMergeRequestAction(a.Action)
		if action == "" {
			return event.Event{}, "merge request action " + a.Action
		}
		// The action says what happened even when the state lags behind it; approvals carry the
		// head that was approved in last_commit.
		merged := action == event.Merged || a.State == "merged"
		ev := event.Event{Kind: kind, Action: action, Repo: e.Project.PathWithNamespace, ProjectID: e.Project.ID, Number: int(a.IID),
			HeadSHA: a.LastCommit.ID, Draft: a.Draft || a.WorkInProgress, Merged: merged, Closed: merged || action == event.Closed || a.State == "closed"}
		if e.User != nil {
			ev.Sender = e.User.Username
		}
		return ev, ""
	case *gitlab.MergeCommentEvent:
		a := e.ObjectAttributes
		if a.System {
			return event.Event{}, "system note"
		}
		// Only a new note is a command: editing an old comment into "/apply" must not apply.
		// GitLab says "update" for an edit; versions that send no action show it in the times.
		if a.Action != gitlab.CommentEventActionCreate && (a.Action != "" || a.UpdatedAt != a.CreatedAt) {
			return event.Event{}, "edited note"
		}
		ev := event.Event{Kind: event.Comment, Action: event.Commented, Repo: e.Project.PathWithNamespace, ProjectID: e.Project.ID,
			Number: int(e.MergeRequest.IID), HeadSHA: e.MergeRequest.LastCommit.ID,
			CommentID: e.ObjectAttributes.ID, CommentBody: e.ObjectAttributes.Note}
		if e.User != nil {
			ev.Sender = e.User.Username
		}
		return ev, ""
	case *gitlab.IssueCommentEvent:
		a := e.ObjectAttributes
		marker := comments.DriftIssueMarkerOf(e.Issue.Description)
		switch {
		case a.System:
			return event.Event{}, "system note"
		case marker == "":
			return event.Event{}, "note on an issue that is no kubeplan drift issue"
		case a.Action != gitlab.CommentEventActionCreate && (a.Action != "" || a.UpdatedAt != a.CreatedAt):
			return event.Event{}, "edited note"
		case !isCommand(a.Note):
			return event.Event{}, "note on a drift issue that is no command"
		}
		ev := event.Event{Kind: event.IssueComment, Action: event.Commented, Repo: e.Project.PathWithNamespace, ProjectID: e.ProjectID,
			Number: int(e.Issue.IID), CommentID: a.ID, CommentBody: a.Note, IssueMarker: marker}
		if e.User != nil {
			ev.Sender = e.User.Username
		}
		return ev, ""
	}
	return event.Event{}, "event not used by kubeplan"
}

// gitlabMergeRequestAction is the kind and kubeplan's action for GitLab's action word on a
// merge request hook, or no action for a word kubeplan does not act on. With the note hook
// (always a comment) it is the one place that knows GitLab's words.
func gitlabMergeRequestAction(word string) (event.Kind, event.Action) {
	switch word {
	case "open", "reopen":
		return event.PullRequest, event.Opened
	case "update": // a push, or any other change of the merge request
		return event.PullRequest, event.Pushed
	case "close":
		return event.PullRequest, event.Closed
	case "merge":
		return event.PullRequest, event.Merged
	// Approvals: "approved" when the approvals required are met, "approval" for each one
	// before; "unapproved" and "unapproval" likewise.
	case "approved", "approval":
		return event.Review, event.Approved
	case "unapproved", "unapproval":
		return event.Review, event.Unapproved
	}
	return "", ""
}
