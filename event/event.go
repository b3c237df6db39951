// Package event is the forge-neutral description of what happened on a pull request, as the
// webhook receiver queues it and the workflow reads it.
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
	// PullRequest: opened, reopened, pushed to, marked ready, closed or merged.
	PullRequest Kind = "pull_request"
	// Comment: a comment (GitHub) or note (GitLab) on a pull request.
	Comment Kind = "comment"
	// Review: an approval, review or dismissal.
	Review Kind = "review"
	// MergeGroup: a merge queue asks for checks of the commit it would merge (GitHub's
	// merge_group checks_requested). Number is the queued pull request, HeadSHA that commit.
	MergeGroup Kind = "merge_group"
)

// Event is one webhook delivery, reduced to what kubeplan acts on.
type Event struct {
	Forge    Forge  `json:"forge"`
	Delivery string `json:"delivery"`
	Kind     Kind   `json:"kind"`
	// Action is the forge's action: opened, synchronize, closed, created, approved…
	Action string `json:"action"`
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
	// InstallationID is the GitHub App installation the event came through.
	InstallationID int64 `json:"installationId,omitempty"`
}

// Key serialises work: events of one pull request are handled one at a time, in order.
func (e Event) Key() string { return fmt.Sprintf("%s:%s#%d", e.Forge, e.Repo, e.Number) }
