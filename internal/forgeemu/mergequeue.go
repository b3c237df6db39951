package forgeemu

import (
	"fmt"
	"strings"
	"time"
)

// MergeQueueBot is the account GitHub's merge queue merges as, in the emulator.
const MergeQueueBot = "github-merge-queue[bot]"

// MergeGroup is a queued pull request's merge group: the commit GitHub's merge queue builds
// from the base branch, the pull requests queued before it and this one, and would merge.
type MergeGroup struct {
	HeadSHA, BaseSHA string
	// HeadRef is GitHub's ref for it: refs/heads/gh-readonly-queue/<base>/pr-<n>-<base sha>.
	HeadRef string
	// QueuedBy is who added the pull request to the queue.
	QueuedBy string
}

// Enqueue adds an open pull request to the default branch's merge queue, as user by: its merge
// group is a merge commit on top of the group queued before it (or of the branch), with the
// pull request's changes applied. It returns the group.
func (e *Emulator) Enqueue(repo string, number int, by string) MergeGroup {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repos[repo]
	pr := e.pr(repo, number)
	if pr.State != "open" || pr.Group != nil {
		panic(fmt.Sprintf("forgeemu: enqueue %s#%d: it is %s or queued already", repo, number, pr.State))
	}
	parent := r.head
	if len(r.queue) > 0 {
		parent = r.PRs[r.queue[len(r.queue)-1]].Group.HeadSHA
	}
	changes := map[string]string{}
	for _, p := range r.changedFiles(pr) {
		changes[p] = r.commits[pr.HeadSHA][p]
	}
	head := r.mergeCommit(applyChanges(r.commits[parent], changes), parent, pr.HeadSHA)
	pr.Group = &MergeGroup{HeadSHA: head, BaseSHA: parent, QueuedBy: by,
		HeadRef: fmt.Sprintf("refs/heads/gh-readonly-queue/%s/pr-%d-%s", r.Default, number, parent)}
	r.queue = append(r.queue, number)
	e.userID(by)
	return *pr.Group
}

// MergeQueued merges the pull request at the front of the queue the way the queue does: the
// default branch moves to its merge group's commit, which becomes the merge commit, merged by
// the queue's account. It returns that commit.
func (e *Emulator) MergeQueued(repo string, number int) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repos[repo]
	pr := e.pr(repo, number)
	if len(r.queue) == 0 || r.queue[0] != number {
		panic(fmt.Sprintf("forgeemu: merge %s#%d from the queue: it is not at its front (%v)", repo, number, r.queue))
	}
	r.queue = r.queue[1:]
	r.head = pr.Group.HeadSHA
	now := e.now()
	pr.State, pr.Merged, pr.MergeCommitSHA, pr.MergedBy, pr.MergedAt, pr.ClosedAt = "closed", true, pr.Group.HeadSHA, MergeQueueBot, now, now
	e.userID(MergeQueueBot)
	return pr.Group.HeadSHA
}

// GitHubMergeGroupEvent builds the merge_group "checks_requested" payload GitHub sends when a
// queued pull request's merge group is created, in GitHub's own shape (go-github's type would
// marshal head_commit as a REST commit; the webhook carries id, tree_id, timestamp): the
// group's head and base commits and refs, its head commit, the repository, the organization,
// the installation, and as sender whoever queued the pull request.
func (e *Emulator) GitHubMergeGroupEvent(repo string, number int) map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(repo)
	pr := r.PRs[number]
	g := pr.Group
	owner, _, _ := strings.Cut(r.FullName, "/")
	return map[string]any{
		"action": "checks_requested",
		"merge_group": map[string]any{
			"head_sha": g.HeadSHA, "head_ref": g.HeadRef, "base_sha": g.BaseSHA, "base_ref": "refs/heads/" + r.Default,
			"head_commit": map[string]any{
				"id": g.HeadSHA, "tree_id": treeSHA(r.commits[g.HeadSHA]),
				"message":   fmt.Sprintf("Merge pull request #%d from %s/%s\n\n%s", number, owner, pr.HeadRef, pr.Title),
				"timestamp": e.now().UTC().Format(time.RFC3339),
				"author":    map[string]string{"name": pr.Author, "email": pr.Author + "@users.noreply.github.com"},
				"committer": map[string]string{"name": "GitHub", "email": "noreply@github.com"},
			},
		},
		"repository": e.ghRepo(r),
		"organization": map[string]any{"login": owner, "id": e.userID(owner), "url": e.URL() + "/api/v3/orgs/" + owner,
			"repos_url": e.URL() + "/api/v3/orgs/" + owner + "/repos", "description": ""},
		"sender":       e.ghUser(g.QueuedBy),
		"installation": map[string]any{"id": InstallationID},
	}
}

// treeSHA stands in for a commit's tree id: the id of its files as a commit without parents.
func treeSHA(files map[string]string) string {
	return (&Repo{commits: map[string]map[string]string{}}).mergeCommit(files)
}
