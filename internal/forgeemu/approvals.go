package forgeemu

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Bool returns a pointer to b (for SetMergeable).
func Bool(b bool) *bool { return &b }

// Review states, as GitHub's REST API spells them.
const (
	ReviewApproved         = "APPROVED"
	ReviewChangesRequested = "CHANGES_REQUESTED"
	ReviewCommented        = "COMMENTED"
	ReviewDismissed        = "DISMISSED"
)

func (e *Emulator) pr(repo string, number int) *PR {
	r := e.repos[repo]
	if r == nil || r.PRs[number] == nil {
		panic(fmt.Sprintf("forgeemu: no pull request %s#%d", repo, number))
	}
	return r.PRs[number]
}

// AddReview records a review submitted by author on the pull request's current head; state is
// APPROVED, CHANGES_REQUESTED or COMMENTED. It returns a copy of the review.
func (e *Emulator) AddReview(repo string, number int, author, state string) *Review {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch state {
	case ReviewApproved, ReviewChangesRequested, ReviewCommented:
	default:
		panic(fmt.Sprintf("forgeemu: review state %q is not APPROVED, CHANGES_REQUESTED or COMMENTED", state))
	}
	return e.addReview(repo, number, author, state)
}

func (e *Emulator) addReview(repo string, number int, author, state string) *Review {
	pr := e.pr(repo, number)
	rv := &Review{ID: e.id(), Author: author, State: state, CommitSHA: pr.HeadSHA, Submitted: e.now()}
	pr.Reviews = append(pr.Reviews, rv)
	e.userID(author)
	cp := *rv
	return &cp
}

// DismissReview dismisses a review (its state becomes DISMISSED, as GitHub shows it) and returns
// a copy of it, or nil when the pull request has no such review.
func (e *Emulator) DismissReview(repo string, number int, reviewID int64) *Review {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rv := range e.pr(repo, number).Reviews {
		if rv.ID == reviewID {
			rv.State = ReviewDismissed
			cp := *rv
			return &cp
		}
	}
	return nil
}

// Approve approves a merge request as user (GitLab). Approving twice keeps the first approval,
// as GitLab does. It returns a copy of the approval (an APPROVED review).
func (e *Emulator) Approve(repo string, number int, user string) *Review {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rv := range e.pr(repo, number).Reviews {
		if rv.Author == user && rv.State == ReviewApproved {
			cp := *rv
			return &cp
		}
	}
	return e.addReview(repo, number, user, ReviewApproved)
}

// Unapprove withdraws user's approval of a merge request (GitLab): it is dismissed.
func (e *Emulator) Unapprove(repo string, number int, user string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rv := range e.pr(repo, number).Reviews {
		if rv.Author == user && rv.State == ReviewApproved {
			rv.State = ReviewDismissed
		}
	}
}

// approvers are the users whose approval currently stands, in the order they approved.
func approvers(pr *PR) []*Review {
	var out []*Review
	for _, rv := range pr.Reviews {
		if rv.State == ReviewApproved {
			out = append(out, rv)
		}
	}
	return out
}

// group returns a group's id, creating it and its parent groups. Callers hold e.mu.
func (e *Emulator) group(path string) int64 {
	parts := strings.Split(path, "/")
	var id int64
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if _, ok := e.groups[p]; !ok {
			e.groups[p] = e.id()
		}
		id = e.groups[p]
	}
	return id
}

// groupByPathOrID finds a group by its full path or numeric id. Callers hold e.mu.
func (e *Emulator) groupByPathOrID(s string) (string, int64, bool) {
	if id, ok := e.groups[s]; ok {
		return s, id, true
	}
	for p, id := range e.groups {
		if fmt.Sprint(id) == s {
			return p, id, true
		}
	}
	return "", 0, false
}

// AddTeamMember makes user a member of a team: a GitHub team "org/team-slug" or a GitLab group
// by full path ("acme/platform-team"); the two share one namespace. GitLab groups (and their
// parents) are created as needed.
func (e *Emulator) AddTeamMember(team, user string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.group(team)
	if e.teams[team] == nil {
		e.teams[team] = map[string]bool{}
	}
	e.teams[team][user] = true
	e.userID(user)
}

// inGroup says whether user is a member of group or, as GitLab's members/all counts them, of
// one of its parent groups. Callers hold e.mu.
func (e *Emulator) inGroup(group, user string, inherited bool) bool {
	for g := group; ; {
		if e.teams[g][user] {
			return true
		}
		i := strings.LastIndex(g, "/")
		if !inherited || i < 0 {
			return false
		}
		g = g[:i]
	}
}

// SetMergeable sets whether a pull request merges cleanly: nil is "still computing" (GitHub's
// null mergeable, GitLab's "checking"), false a conflict.
func (e *Emulator) SetMergeable(repo string, number int, mergeable *bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	pr := e.pr(repo, number)
	if mergeable == nil {
		pr.Mergeable = nil
	} else {
		pr.Mergeable = Bool(*mergeable)
	}
}

// SetDetailedMergeStatus makes GitLab report a merge request's detailed_merge_status as status
// (e.g. "ci_still_running", "not_approved", "need_rebase"); "" derives it from the state again.
func (e *Emulator) SetDetailedMergeStatus(repo string, number int, status string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pr(repo, number).DetailedMergeStatus = status
}

// MergePR merges an open pull request as user by: a merge commit on the base branch whose
// parents are the branch's head and the pull request's head, and whose tree is the branch's
// tree with the pull request's changes applied (the head's tree when the branch has not
// moved; the emulator does not model conflicts, SetMergeable does). The default branch moves to
// it and the pull request is closed, merged, with the commit as its merge commit sha, which
// MergePR returns.
func (e *Emulator) MergePR(repo string, number int, by string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repos[repo]
	pr := e.pr(repo, number)
	if pr.State != "open" {
		panic(fmt.Sprintf("forgeemu: merge %s#%d: it is %s", repo, number, pr.State))
	}
	changes := map[string]string{}
	for _, p := range r.changedFiles(pr) {
		changes[p] = r.commits[pr.HeadSHA][p] // "" for a deleted file deletes it
	}
	files := applyChanges(r.commits[r.head], changes)
	sha := r.mergeCommit(files, r.head, pr.HeadSHA)
	r.head = sha
	now := e.now()
	pr.State, pr.Merged, pr.MergeCommitSHA, pr.MergedBy, pr.MergedAt, pr.ClosedAt = "closed", true, sha, by, now, now
	e.userID(by)
	return sha
}

// PushDefault commits changes straight to the default branch (a path mapped to "" is deleted)
// and returns the new head.
func (e *Emulator) PushDefault(repo string, changes map[string]string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repos[repo]
	r.head = r.mergeCommit(applyChanges(r.commits[r.head], changes), r.head)
	return r.head
}

// mergeCommit stores a commit with its parents, if any: its sha depends on them, so a merge
// commit never shares a sha with the head whose tree it may have.
func (r *Repo) mergeCommit(files map[string]string, parents ...string) string {
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha1.New()
	for _, p := range parents {
		fmt.Fprintf(h, "parent %s\n", p)
	}
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, files[k])
	}
	sha := hex.EncodeToString(h.Sum(nil))
	r.commits[sha] = applyChanges(files, nil)
	return sha
}

// ClosePR closes a pull request without merging it.
func (e *Emulator) ClosePR(repo string, number int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	pr := e.pr(repo, number)
	if pr.State == "open" {
		pr.State, pr.ClosedAt = "closed", e.now()
	}
}

// ReopenPR reopens a closed, unmerged pull request.
func (e *Emulator) ReopenPR(repo string, number int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if pr := e.pr(repo, number); !pr.Merged {
		pr.State, pr.ClosedAt = "open", time.Time{}
	}
}

// DefaultHead is the commit the repository's default branch points at.
func (e *Emulator) DefaultHead(repo string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.repos[repo].head
}

// testMergeSHA is the sha GitHub reports as merge_commit_sha of an open, mergeable pull request:
// its test merge commit (never fetched from the emulator).
func testMergeSHA(pr *PR) string {
	sum := sha1.Sum([]byte("test merge\x00" + pr.BaseSHA + "\x00" + pr.HeadSHA))
	return hex.EncodeToString(sum[:])
}
