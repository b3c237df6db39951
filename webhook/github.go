package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/kubeplan/kubeplan/commands"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
)

// GitHub receives GitHub webhooks.
type GitHub struct {
	Secret  []byte
	Queue   Enqueuer
	MaxBody int64
	Log     *slog.Logger
}

func (h *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, bodyLimit(h.MaxBody))
	if !ok {
		return
	}
	if !validSignature(r.Header.Get(github.SHA256SignatureHeader), body, h.Secret) {
		h.Log.Warn("github webhook refused: bad or missing signature", "delivery", github.DeliveryID(r), "remote", r.RemoteAddr)
		http.Error(w, "signature does not match", http.StatusUnauthorized)
		return
	}
	kind := github.WebHookType(r)
	if kind == "ping" {
		_, _ = w.Write([]byte("pong\n"))
		return
	}
	parsed, err := github.ParseWebHook(kind, body)
	if err != nil {
		// Unknown event types are acknowledged and ignored; malformed known ones are refused.
		if kind == "pull_request" || kind == "issue_comment" || kind == "pull_request_review" {
			http.Error(w, "malformed "+kind+" payload", http.StatusBadRequest)
			return
		}
		ignore(w, "event "+kind)
		return
	}
	ev, why := githubEvent(parsed)
	if why != "" {
		ignore(w, why)
		return
	}
	ev.Forge, ev.Delivery = event.GitHub, github.DeliveryID(r)
	enqueue(w, r, h.Queue, h.Log, ev)
}

// validSignature checks X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the body with
// the secret, compared in constant time. Nothing else is accepted: not the legacy SHA-1
// header, not another algorithm named in this one (go-github's ValidateSignature would take
// "sha1=" or "sha512=" here), not an empty secret, which anyone could sign with.
func validSignature(header string, body, secret []byte) bool {
	digest, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(digest)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// githubEvent reduces a parsed GitHub payload to an event, or says why it is ignored.
func githubEvent(parsed any) (event.Event, string) {
	switch e := parsed.(type) {
	case *github.PullRequestEvent:
		action := githubAction(event.PullRequest, e.GetAction())
		if action == "" {
			return event.Event{}, "pull_request action " + e.GetAction()
		}
		pr := e.GetPullRequest()
		if action == event.Closed && pr.GetMerged() {
			action = event.Merged
		}
		return event.Event{
			Kind: event.PullRequest, Action: action, Repo: e.GetRepo().GetFullName(), Number: pr.GetNumber(),
			HeadSHA: pr.GetHead().GetSHA(), Draft: pr.GetDraft(), Merged: pr.GetMerged(), Closed: pr.GetState() == "closed",
			Sender: e.GetSender().GetLogin(), SenderIsBot: e.GetSender().GetType() == "Bot", InstallationID: e.GetInstallation().GetID(),
		}, ""
	case *github.IssueCommentEvent:
		if e.GetIssue() == nil { // go-github's IsPullRequest panics on nil
			return event.Event{}, "comment on an issue, not a pull request"
		}
		if !e.GetIssue().IsPullRequest() {
			return issueCommentEvent(e)
		}
		action := githubAction(event.Comment, e.GetAction())
		if action == "" {
			return event.Event{}, "issue_comment action " + e.GetAction()
		}
		return event.Event{
			Kind: event.Comment, Action: action, Repo: e.GetRepo().GetFullName(), Number: e.GetIssue().GetNumber(),
			Sender: e.GetComment().GetUser().GetLogin(), SenderIsBot: e.GetComment().GetUser().GetType() == "Bot",
			CommentID: e.GetComment().GetID(), CommentBody: e.GetComment().GetBody(), InstallationID: e.GetInstallation().GetID(),
		}, ""
	case *github.PullRequestReviewEvent:
		action := githubAction(event.Review, e.GetAction())
		if action == "" {
			return event.Event{}, "pull_request_review action " + e.GetAction()
		}
		pr, review := e.GetPullRequest(), e.GetReview()
		// HeadSHA is the commit the review was given on, which may be older than the head; the
		// sender is the reviewer, whose stance changed (not who dismissed the review).
		head := review.GetCommitID()
		if head == "" {
			head = pr.GetHead().GetSHA()
		}
		reviewer := review.GetUser()
		if reviewer == nil {
			reviewer = e.GetSender()
		}
		return event.Event{
			Kind: event.Review, Action: action, Repo: e.GetRepo().GetFullName(), Number: pr.GetNumber(),
			HeadSHA: head, Draft: pr.GetDraft(), Merged: pr.GetMerged(), Closed: pr.GetState() == "closed",
			Sender: reviewer.GetLogin(), SenderIsBot: reviewer.GetType() == "Bot", InstallationID: e.GetInstallation().GetID(),
		}, ""
	case *github.MergeGroupEvent:
		return mergeGroupEvent(e)
	}
	return event.Event{}, "event not used by kubeplan"
}

// issueCommentEvent reduces a comment on an issue: only a new command on an issue whose body
// starts with kubeplan's drift marker is an event; the handler checks on the forge that the
// issue is kubeplan's own, since anyone can write the marker into an issue.
func issueCommentEvent(e *github.IssueCommentEvent) (event.Event, string) {
	marker := comments.DriftIssueMarkerOf(e.GetIssue().GetBody())
	switch {
	case marker == "":
		return event.Event{}, "comment on an issue that is no kubeplan drift issue"
	case githubAction(event.Comment, e.GetAction()) == "":
		return event.Event{}, "issue_comment action " + e.GetAction()
	case !isCommand(e.GetComment().GetBody()):
		return event.Event{}, "comment on a drift issue that is no command"
	}
	return event.Event{
		Kind: event.IssueComment, Action: event.Commented, Repo: e.GetRepo().GetFullName(), Number: e.GetIssue().GetNumber(),
		Sender: e.GetComment().GetUser().GetLogin(), SenderIsBot: e.GetComment().GetUser().GetType() == "Bot",
		CommentID: e.GetComment().GetID(), CommentBody: e.GetComment().GetBody(), IssueMarker: marker, InstallationID: e.GetInstallation().GetID(),
	}, ""
}

// isCommand reports whether a comment reads as a kubeplan command (valid or not).
func isCommand(body string) bool {
	_, ok, _ := commands.Parse(body)
	return ok
}

// githubAction is kubeplan's action for GitHub's action word on an event of this kind, or ""
// for a word kubeplan does not act on. It is the one place that knows GitHub's words: webhooks
// are read with it, and so are jobs queued by a kubeplan that kept the forge's word.
func githubAction(kind event.Kind, word string) event.Action {
	switch kind {
	case event.PullRequest:
		switch word {
		case "opened", "reopened":
			return event.Opened
		case "synchronize":
			return event.Pushed
		case "ready_for_review":
			return event.Ready
		case "converted_to_draft":
			return event.Drafted
		case "closed": // merged or not: the payload's merged flag says (see githubEvent)
			return event.Closed
		}
	case event.Comment:
		if word == "created" {
			return event.Commented
		}
	case event.Review:
		switch word {
		// Every submitted review, approving or not, is read back from the forge's reviews,
		// which name its commit: nothing is remembered of it. An edited review's body
		// changed, not its stance.
		case "submitted":
			return event.Submitted
		case "dismissed":
			return event.Dismissed
		}
	case event.MergeGroup:
		// Only checks_requested asks for work: destroyed (merged, dequeued, invalidated)
		// needs none, as the merge itself arrives as a pull_request event.
		if word == "checks_requested" {
			return event.Queued
		}
	}
	return ""
}
