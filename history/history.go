// Package history is the audit record's vocabulary: what kubeplan did (planned, applied,
// rolled out, reverted, checked for drift), where, for whom, on whose approval, and with what
// result per object. It is plain data: the store keeps entries in a hash chain, workflow and
// driftwatch write them, the CLI and the web page read them.
//
// Nothing in an entry is ever a Secret value or a token: diffs are the plan's diffs, whose
// Secret values are already hidden exactly as in comments.
package history

import (
	"time"

	"github.com/kubeplan/kubeplan/plan"
)

// Kind says what an entry records.
type Kind string

const (
	// Plan: a pull request (or drift check's) plan of one project on one cluster.
	Plan Kind = "plan"
	// Apply: an apply before merge (`/apply`).
	Apply Kind = "apply"
	// Rollout: the apply that follows a merge.
	Rollout Kind = "rollout"
	// Revert: a drift check put git's state back (drift mode revert).
	Revert Kind = "revert"
	// DriftApply: `/apply` on a drift issue.
	DriftApply Kind = "drift_apply"
	// DriftCheck: a scheduled drift check found drift, or found it gone.
	DriftCheck Kind = "drift_check"
)

// Kinds lists every kind, in the order people read about them.
var Kinds = []Kind{Plan, Apply, Rollout, Revert, DriftApply, DriftCheck}

// Approval is one approval that counted toward the policy when the entry was written.
type Approval struct {
	Reviewer string `json:"reviewer"`
	// SHA is the commit the reviewer approved.
	SHA string `json:"sha"`
}

// Object is what an entry did to, or saw on, one object.
type Object struct {
	Object plan.ObjectRef `json:"object"`
	// Outcome: for a plan, the planned action (create, update, delete, unchanged, fail); for
	// an apply, what happened (created, configured, unchanged, pruned, failed); for a drift
	// check, the drift state (changed, missing, extra).
	Outcome string `json:"outcome"`
	// Health is the object's health after an apply (Current, InProgress, Failed…), if waited for.
	Health string `json:"health,omitempty"`
	// Error says why the object failed.
	Error string `json:"error,omitempty"`
	// Diff is the planned diff, live → git, with Secret values hidden as in comments.
	Diff string `json:"diff,omitempty"`
	// Causes says who changed a drifted object's fields ("`.spec.replicas` changed by "kubectl"
	// (Update, subresource scale) at …"), one line per field.
	Causes []string `json:"causes,omitempty"`
}

// Entry is one record of the history.
type Entry struct {
	// Seq is the entry's place in the store's chain, from 1; set by the store.
	Seq  int64     `json:"seq"`
	At   time.Time `json:"at"`
	Kind Kind      `json:"kind"`

	// Forge is "github" or "gitlab"; Repo is the repository's full path ("org/repo").
	Forge string `json:"forge"`
	Repo  string `json:"repo"`
	// Number is the pull request's (or the drift issue's) number; 0 for a drift check with
	// no issue. Issue is true for a drift issue.
	Number int  `json:"number,omitempty"`
	Issue  bool `json:"issue,omitempty"`
	// URL links back to the pull request or issue on the forge; CommitURL to the commit.
	URL       string `json:"url,omitempty"`
	CommitURL string `json:"commitURL,omitempty"`
	// SHA is the head commit planned, or the merge commit rolled out.
	SHA string `json:"sha,omitempty"`

	Project string `json:"project"`
	Cluster string `json:"cluster"`

	// Actor is who asked: the author of the push, the commenter of `/apply`, the merger;
	// "kubeplan" for scheduled checks.
	Actor string `json:"actor,omitempty"`
	// Approvals are the approvals that counted when the entry was written.
	Approvals []Approval `json:"approvals,omitempty"`
	// Verdict is the policy's word at that moment: "allowed", or why it was not.
	Verdict  string `json:"verdict,omitempty"`
	PlanHash string `json:"planHash,omitempty"`

	// State is the outcome as a whole: planned, succeeded, failed, refused, drifted, clean…
	State   string `json:"state"`
	Summary string `json:"summary,omitempty"`
	// Objects are the objects the entry touched or saw; unchanged objects of a plan are
	// left out to keep entries small.
	Objects []Object `json:"objects,omitempty"`

	// PrevHash is the hash of the entry before in the chain ("" for the first); Hash covers
	// this entry's content and PrevHash. Both are set by the store.
	PrevHash string `json:"prevHash"`
	Hash     string `json:"hash"`
}

// Filter selects entries; the zero Filter selects every entry.
type Filter struct {
	// Repos limits to these repositories ("github:org/repo"), nil means any. The web page
	// always sets it to what the signed-in user can read.
	Repos   []string
	Project string
	Cluster string
	// Object limits to entries that touched or saw this object (Kind, Namespace, Name; an
	// empty APIVersion matches any).
	Object *plan.ObjectRef
	Kinds  []Kind
	Since  time.Time
	// Before limits to entries with Seq < Before (paging, newest first); 0 means no limit.
	Before int64
	// Limit caps the number of entries (0: the reader's default).
	Limit int
}

// RepoKey is how a filter names a repository: "github:org/repo".
func RepoKey(forge, repo string) string { return forge + ":" + repo }
