// Package event is the forge-neutral description of what happened on a pull request (or on a
// drift issue kubeplan keeps), as the webhook receiver queues it and the workflow (or, for a
// drift issue, package driftwatch) reads it.
package event

import "fmt"

// Forge names a forge implementation.
type Forge string

const (
	GitHub Forge = "github"
	GitLab Forge = "gitlab"
)

// Kind is what happened.
type Kind string

const (
	// PullRequest: opened, pushed to, marked ready or draft, closed or merged.
	PullRequest Kind = "pull_request"
	// Comment: a comment (GitHub) or note (GitLab) on a pull request.
	Comment Kind = "comment"
	// Review: an approval or its withdrawal, a review or a dismissal.
	Review Kind = "review"
	// MergeGroup: a merge queue asks for checks of the commit it would merge. Number is the
	// queued pull request, HeadSHA that commit.
	MergeGroup Kind = "merge_group"
	// IssueComment: a new comment (GitHub) or note (GitLab) on an issue, not a pull request,
	// whose body starts with kubeplan's drift marker (IssueMarker). Number is the issue's
	// number (GitLab: its iid). Only kubeplan's own drift issues are acted on, and the handler
	// reads the issue again through the forge: the payload says what anyone wrote.
	IssueComment Kind = "issue_comment"
)

// Action is what happened, in kubeplan's words: package webhook maps each forge's words to
// these once, so the workflow never reads a forge's vocabulary.
type Action string

// The actions of pull requests (Kind PullRequest).
const (
	// Opened: the pull request was opened or reopened.
	Opened Action = "opened"
	// Pushed: new commits, or an update that may bring them (GitLab says "update" for a push
	// and for other changes of a merge request alike).
	Pushed Action = "pushed"
	// Ready: a draft was marked ready for review.
	Ready Action = "ready"
	// Drafted: the pull request was turned back into a draft.
	Drafted Action = "drafted"
	// Closed: closed without being merged.
	Closed Action = "closed"
	// Merged: merged, which closes it.
	Merged Action = "merged"
)

// The actions of reviews (Kind Review).
const (
	// Approved: Sender approved the commit HeadSHA, and the forge's list of reviews will not
	// say which commit it was (GitLab's approvals): the workflow remembers it.
	Approved Action = "approved"
	// Unapproved: Sender withdrew such an approval.
	Unapproved Action = "unapproved"
	// Submitted: a review was submitted (approving, requesting changes or commenting); the
	// forge's list of reviews says its stance and its commit (GitHub's reviews).
	Submitted Action = "submitted"
	// Dismissed: Sender's review was dismissed.
	Dismissed Action = "dismissed"
)

// The actions of comments (Kinds Comment and IssueComment) and merge queues (Kind MergeGroup).
const (
	// Commented: a new comment; an edited one is not an event.
	Commented Action = "commented"
	// Queued: a merge queue asks for checks of the commit it would merge (HeadSHA).
	Queued Action = "queued"
)

// Known says whether a is one of kubeplan's actions; a job queued by an older kubeplan holds
// a forge's word instead (see webhook.Decode).
func (a Action) Known() bool {
	switch a {
	case Opened, Pushed, Ready, Drafted, Closed, Merged, Approved, Unapproved, Submitted, Dismissed, Commented, Queued:
		return true
	}
	return false
}

// Event is one webhook delivery, reduced to what kubeplan acts on.
type Event struct {
	Forge    Forge  `json:"forge"`
	Delivery string `json:"delivery"`
	Kind     Kind   `json:"kind"`
	Action   Action `json:"action"`
	// Repo is "owner/name" (GitHub) or the project path "group/sub/name" (GitLab).
	Repo string `json:"repo"`
	// ProjectID is GitLab's numeric project id.
	ProjectID int64 `json:"projectId,omitempty"`
	// Number is the pull request number (GitLab: the merge request iid).
	Number  int    `json:"number"`
	HeadSHA string `json:"headSha,omitempty"`
	Draft   bool   `json:"draft,omitempty"`
	Merged  bool   `json:"merged,omitempty"`
	Closed  bool   `json:"closed,omitempty"`
	// Sender is who caused the event (the commenter for comments).
	Sender string `json:"sender"`
	// SenderIsBot is true when the forge marks the sender as a bot (kubeplan ignores its own).
	SenderIsBot bool `json:"senderIsBot,omitempty"`
	// CommentID and CommentBody are set for comments.
	CommentID   int64  `json:"commentId,omitempty"`
	CommentBody string `json:"commentBody,omitempty"`
	// IssueMarker is, for an IssueComment, the hidden first line of the issue's body as the
	// payload gives it (comments.DriftIssueMarker): which repository, project and cluster the
	// drift issue claims to be about. It is a claim: the handler checks it on the forge.
	IssueMarker string `json:"issueMarker,omitempty"`
	// InstallationID is the GitHub App installation the event came through.
	InstallationID int64 `json:"installationId,omitempty"`
}

// Key serialises work: events of one pull request (or one issue) are handled one at a time,
// in order. An issue's key differs from a pull request's: GitLab numbers them apart.
func (e Event) Key() string {
	if e.Kind == IssueComment {
		return fmt.Sprintf("%s:%s/issues#%d", e.Forge, e.Repo, e.Number)
	}
	return fmt.Sprintf("%s:%s#%d", e.Forge, e.Repo, e.Number)
}
