// Package forge holds the forge-neutral types the workflow exchanges with GitHub and GitLab;
// the implementations live in forge/github and forge/gitlab.
package forge

import (
	"errors"
	"fmt"

	"github.com/kubeplan/kubeplan/internal/redact"
)

// PullRequest is a pull request (GitHub) or merge request (GitLab).
type PullRequest struct {
	Repo    string
	Number  int
	Title   string
	Author  string
	HeadSHA string
	BaseSHA string
	HeadRef string
	BaseRef string
	Draft   bool
	Closed  bool
	Merged  bool
	// Mergeable is nil while the forge is still computing it.
	Mergeable      *bool
	MergeCommitSHA string
	// MergedBy is who merged it, as the forge says; MergedByBot marks an app's account
	// (GitHub's merge queue, a merge bot) rather than a person's.
	MergedBy    string
	MergedByBot bool
	// URL is the pull request's web page; a commit's web page is CommitURLPrefix followed by
	// its SHA (both empty when the forge did not say). The history links back through them.
	URL             string
	CommitURLPrefix string
}

// Comment is a comment on a pull request.
type Comment struct {
	ID     int64
	Author string
	Body   string
}

// Issue is an issue kubeplan keeps on a repository (the drift of a project on a cluster).
type Issue struct {
	Number int
	Title  string
	Body   string
	Author string
	Closed bool
	URL    string
}

// State is a commit status state.
type State string

const (
	Pending State = "pending"
	Success State = "success"
	Failure State = "failure"
	Error   State = "error"
)

// Status is a commit status, e.g. kubeplan/plan.
type Status struct {
	Context     string
	State       State
	Description string
	TargetURL   string
}

// Review is an approval or review of a pull request.
// Reviews are listed oldest first; a reviewer's latest approving, change-requesting or
// dismissed review is their current stance.
type Review struct {
	Author           string
	Approved         bool
	ChangesRequested bool
	Dismissed        bool
	// CommitSHA is the head the review was given on; empty when the forge does not say
	// (GitLab approvals), and the workflow fills it from the approval webhooks it recorded.
	CommitSHA string
}

// Permission is a user's access to a repository on kubeplan's scale, which is GitHub's
// repository roles; GitLab's roles map onto it. People are told it in their forge's own
// words: each forge client's PermissionName ("triage" on GitHub is "Reporter" on GitLab).
type Permission string

const (
	PermNone     Permission = "none"
	PermRead     Permission = "read"
	PermTriage   Permission = "triage"
	PermWrite    Permission = "write"
	PermMaintain Permission = "maintain"
	PermAdmin    Permission = "admin"
)

// ErrNotFound is returned when the forge says a pull request, comment or file does not exist.
var ErrNotFound = errors.New("not found on the forge")

// Wrap names a failed forge operation ("github: get pull request acme/x#1: …") and turns the
// forge's 404 into ErrNotFound, so callers test one error whatever the forge. status is the
// HTTP status of the answer, 0 when there was none. URLs the error quotes lose their
// credentials (package redact): the message ends up in logs, the job and commit statuses.
func Wrap(forgeName, op string, status int, err error) error {
	if err == nil {
		return nil
	}
	if status == 404 {
		return fmt.Errorf("%s: %s: %w", forgeName, op, ErrNotFound)
	}
	return fmt.Errorf("%s: %s: %w", forgeName, op, redact.Error(err))
}
