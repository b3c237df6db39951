// Package gitlab implements kubeplan's forge operations on GitLab (gitlab.com or self-managed)
// with the go-gitlab client and a token.
package gitlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/forge/forgehttp"
)

// Config says how to reach GitLab.
type Config struct {
	// BaseURL is the API root, e.g. https://gitlab.example.com/api/v4; empty is gitlab.com.
	BaseURL string
	Token   string
	// HTTP tunes timeouts and retries (forgehttp.Options).
	HTTP forgehttp.Options
	Log  *slog.Logger
}

// Client is GitLab for one token.
type Client struct {
	gl   *gl.Client
	mu   sync.Mutex
	self string
}

// New returns a client. Retries are kubeplan's (forgehttp, retry.Transport), not the
// library's, so that comment creation is never repeated after a server error.
func New(cfg Config) (*Client, error) {
	if cfg.Token == "" {
		return nil, errors.New("gitlab: no token configured")
	}
	api := cfg.BaseURL
	if api == "" {
		api = "https://gitlab.com/api/v4"
	}
	o := cfg.HTTP
	if o.Log == nil {
		o.Log = cfg.Log
	}
	rt, err := forgehttp.Transport(api, o)
	if err != nil {
		return nil, fmt.Errorf("gitlab: %w", err)
	}
	opts := []gl.ClientOptionFunc{gl.WithoutRetries(), gl.WithHTTPClient(&http.Client{Transport: rt})}
	if cfg.BaseURL != "" {
		opts = append(opts, gl.WithBaseURL(cfg.BaseURL))
	}
	c, err := gl.NewClient(cfg.Token, opts...)
	if err != nil {
		return nil, fmt.Errorf("gitlab client: %w", err)
	}
	return &Client{gl: c}, nil
}

// Self is the username kubeplan's notes carry, so it recognises its own notes.
func (c *Client) Self(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.self != "" {
		return c.self, nil
	}
	u, resp, err := c.gl.Users.CurrentUser(gl.WithContext(ctx))
	if err != nil {
		return "", wrap("get the current user", resp, err)
	}
	c.self = u.Username
	return c.self, nil
}

func wrap(op string, resp *gl.Response, err error) error {
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	return forge.Wrap("gitlab", op, status, err)
}

// MaxCommentLength is the largest note kubeplan may write: GitLab's limit less the post
// marker CreateComment adds.
func (c *Client) MaxCommentLength() int { return forge.MaxGitLabNote - forge.PostMarkerLen }

// PullRequest returns a merge request's state.
func (c *Client) PullRequest(ctx context.Context, repo string, number int) (*forge.PullRequest, error) {
	mr, resp, err := c.gl.MergeRequests.GetMergeRequest(repo, int64(number), nil, gl.WithContext(ctx))
	if err != nil {
		return nil, wrap(fmt.Sprintf("get merge request %s!%d", repo, number), resp, err)
	}
	pr := &forge.PullRequest{Repo: repo, Number: number, Title: mr.Title, HeadSHA: mr.SHA, HeadRef: mr.SourceBranch, BaseRef: mr.TargetBranch,
		Draft: mr.Draft, Closed: mr.State == "closed" || mr.State == "merged", Merged: mr.State == "merged",
		Mergeable: mergeable(mr.DetailedMergeStatus), URL: mr.WebURL}
	// A merge request's page is <project>/-/merge_requests/<iid>; its project's commits are
	// under <project>/-/commit/.
	if project, _, ok := strings.Cut(mr.WebURL, "/-/merge_requests/"); ok {
		pr.CommitURLPrefix = project + "/-/commit/"
	}
	if mr.Author != nil {
		pr.Author = mr.Author.Username
	}
	if mr.DiffRefs.BaseSha != "" {
		pr.BaseSHA = mr.DiffRefs.BaseSha
	}
	if pr.Merged {
		switch {
		case mr.MergeUser != nil:
			pr.MergedBy = mr.MergeUser.Username
		case mr.MergedBy != nil: // GitLab before 14.7
			pr.MergedBy = mr.MergedBy.Username
		}
		// The commit the merge left on the target branch: the merge commit; with squash and
		// fast-forward, the squash commit; with a plain fast-forward, the head itself.
		switch {
		case mr.MergeCommitSHA != "":
			pr.MergeCommitSHA = mr.MergeCommitSHA
		case mr.SquashCommitSHA != "":
			pr.MergeCommitSHA = mr.SquashCommitSHA
		default:
			pr.MergeCommitSHA = mr.SHA
		}
	}
	return pr, nil
}

// mergeable reads GitLab's detailed_merge_status as forge.PullRequest.Mergeable: true, false,
// or nil while GitLab is still checking (or too old to say: the field came in GitLab 15.6).
//
// GitLab folds everything that blocks a merge into this one field, GitHub's mergeable only
// speaks of conflicts. Kubeplan's own commit statuses make GitLab say "ci_still_running" or
// "ci_must_pass" (a pending or failed kubeplan/plan when pipelines must succeed) and approval
// rules "not_approved": kubeplan is what gates on those, so reading them as "not mergeable"
// would make it block itself; they count as mergeable. Conflicts, a needed rebase, unresolved
// discussions, a draft, a closed merge request and anything unknown count as not mergeable.
func mergeable(detailed string) *bool {
	yes, no := true, false
	switch detailed {
	case "mergeable", "ci_still_running", "ci_must_pass", "not_approved":
		return &yes
	case "checking", "unchecked", "preparing", "approvals_syncing", "":
		return nil
	}
	return &no
}

// ChangedFiles lists the paths a merge request changes (both sides of renames).
func (c *Client) ChangedFiles(ctx context.Context, repo string, number int) ([]string, error) {
	var out []string
	opt := &gl.ListMergeRequestDiffsOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}}
	for {
		diffs, resp, err := c.gl.MergeRequests.ListMergeRequestDiffs(repo, int64(number), opt, gl.WithContext(ctx))
		if err != nil {
			return nil, wrap(fmt.Sprintf("list changes of %s!%d", repo, number), resp, err)
		}
		for _, d := range diffs {
			out = append(out, d.NewPath)
			if d.OldPath != d.NewPath {
				out = append(out, d.OldPath)
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

// Archive downloads the repository at sha as a gzipped tarball.
func (c *Client) Archive(ctx context.Context, repo, sha string) (io.ReadCloser, error) {
	var buf bytes.Buffer
	format := "tar.gz"
	resp, err := c.gl.Repositories.StreamArchive(repo, &buf, &gl.ArchiveOptions{Format: &format, SHA: &sha}, gl.WithContext(ctx))
	if err != nil {
		return nil, wrap(fmt.Sprintf("archive of %s@%s", repo, sha), resp, err)
	}
	return io.NopCloser(&buf), nil
}

// DefaultBranch returns the project's default branch and the commit it points at.
func (c *Client) DefaultBranch(ctx context.Context, repo string) (branch, sha string, err error) {
	p, resp, err := c.gl.Projects.GetProject(repo, nil, gl.WithContext(ctx))
	if err != nil {
		return "", "", wrap("get project "+repo, resp, err)
	}
	b, resp, err := c.gl.Branches.GetBranch(repo, p.DefaultBranch, gl.WithContext(ctx))
	if err != nil {
		return "", "", wrap(fmt.Sprintf("get branch %s of %s", p.DefaultBranch, repo), resp, err)
	}
	if b.Commit == nil {
		return "", "", fmt.Errorf("gitlab: branch %s of %s has no commit", p.DefaultBranch, repo)
	}
	return b.Name, b.Commit.ID, nil
}

// Comments lists a merge request's notes, oldest first, system notes left out, as kubeplan
// wrote them (without the post markers CreateComment adds).
func (c *Client) Comments(ctx context.Context, repo string, number int) ([]forge.Comment, error) {
	out, err := c.notes(ctx, repo, number)
	for i := range out {
		out[i].Body = forge.StripPostMarker(out[i].Body)
	}
	return out, err
}

// notes lists a merge request's notes as GitLab stores them, system notes left out.
func (c *Client) notes(ctx context.Context, repo string, number int) ([]forge.Comment, error) {
	var out []forge.Comment
	sort, orderBy := "asc", "created_at"
	opt := &gl.ListMergeRequestNotesOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}, Sort: &sort, OrderBy: &orderBy}
	for {
		notes, resp, err := c.gl.Notes.ListMergeRequestNotes(repo, int64(number), opt, gl.WithContext(ctx))
		if err != nil {
			return nil, wrap(fmt.Sprintf("list notes of %s!%d", repo, number), resp, err)
		}
		for _, n := range notes {
			if !n.System {
				out = append(out, forge.Comment{ID: n.ID, Author: n.Author.Username, Body: n.Body})
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

// CreateComment posts a note once and returns its id: a note GitLab stored before answering
// with a server error is found, not posted again (forge.CreateOnce).
func (c *Client) CreateComment(ctx context.Context, repo string, number int, body string) (int64, error) {
	return forge.CreateOnce(ctx, body, func(ctx context.Context, body string) (int64, int, error) {
		n, resp, err := c.gl.Notes.CreateMergeRequestNote(repo, int64(number), &gl.CreateMergeRequestNoteOptions{Body: &body}, gl.WithContext(ctx))
		if err != nil {
			status := 0
			if resp != nil && resp.Response != nil {
				status = resp.StatusCode
			}
			return 0, status, wrap(fmt.Sprintf("note on %s!%d", repo, number), resp, err)
		}
		return n.ID, 0, nil
	}, func(ctx context.Context) ([]forge.Comment, error) { return c.notes(ctx, repo, number) })
}

// UpdateComment replaces a note's body.
func (c *Client) UpdateComment(ctx context.Context, repo string, number int, id int64, body string) error {
	_, resp, err := c.gl.Notes.UpdateMergeRequestNote(repo, int64(number), id, &gl.UpdateMergeRequestNoteOptions{Body: &body}, gl.WithContext(ctx))
	return wrap(fmt.Sprintf("update note %d on %s!%d", id, repo, number), resp, err)
}

// DeleteComment removes a note.
func (c *Client) DeleteComment(ctx context.Context, repo string, number int, id int64) error {
	resp, err := c.gl.Notes.DeleteMergeRequestNote(repo, int64(number), id, gl.WithContext(ctx))
	return wrap(fmt.Sprintf("delete note %d on %s!%d", id, repo, number), resp, err)
}

// SetStatus sets a commit status (GitLab's states: pending, running, success, failed, canceled).
func (c *Client) SetStatus(ctx context.Context, repo, sha string, s forge.Status) error {
	state := map[forge.State]gl.BuildStateValue{forge.Pending: gl.Pending, forge.Success: gl.Success, forge.Failure: gl.Failed, forge.Error: gl.Failed}[s.State]
	opt := &gl.SetCommitStatusOptions{State: state, Name: &s.Context, Description: &s.Description}
	if s.TargetURL != "" {
		opt.TargetURL = &s.TargetURL
	}
	_, resp, err := c.gl.Commits.SetCommitStatus(repo, sha, opt, gl.WithContext(ctx))
	return wrap(fmt.Sprintf("set status %s on %s@%s", s.Context, repo, sha), resp, err)
}

// Reviews lists a merge request's current approvals, in the order GitLab lists them. GitLab
// keeps no withdrawn approvals and no change requests here, and does not say which commit an
// approval was given on: CommitSHA is empty (the workflow fills it from the approval webhooks
// it recorded, whose last_commit is the head that was approved).
func (c *Client) Reviews(ctx context.Context, repo string, number int) ([]forge.Review, error) {
	a, resp, err := c.gl.MergeRequestApprovals.GetConfiguration(repo, int64(number), gl.WithContext(ctx))
	if err != nil {
		return nil, wrap(fmt.Sprintf("approvals of %s!%d", repo, number), resp, err)
	}
	var out []forge.Review
	for _, u := range a.ApprovedBy {
		if u.User != nil {
			out = append(out, forge.Review{Author: u.User.Username, Approved: true})
		}
	}
	return out, nil
}

// IsMember says whether user is a member of a group, named by its full path ("acme/sre"; a
// leading "@" is allowed), counting members inherited from parent groups. A missing group and a
// missing user both mean "not a member"; so does a membership below Guest (minimal access) or
// an inactive one (blocked user, awaiting a seat).
func (c *Client) IsMember(ctx context.Context, team, user string) (bool, error) {
	group, err := parseGroup(team)
	if err != nil {
		return false, err
	}
	if user == "" {
		return false, nil
	}
	users, resp, err := c.gl.Users.ListUsers(&gl.ListUsersOptions{Username: &user}, gl.WithContext(ctx))
	if err != nil {
		return false, wrap("look up user "+user, resp, err)
	}
	if len(users) == 0 {
		return false, nil
	}
	m, resp, err := c.gl.GroupMembers.GetInheritedGroupMember(group, users[0].ID, gl.WithContext(ctx))
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return false, nil
		}
		return false, wrap(fmt.Sprintf("membership of %s in group %s", user, group), resp, err)
	}
	return m.AccessLevel >= gl.GuestPermissions && (m.State == "" || m.State == "active"), nil
}

// parseGroup checks a group's full path: segments of letters, digits, ".", "_" and "-".
func parseGroup(team string) (string, error) {
	path := strings.TrimPrefix(strings.TrimSpace(team), "@")
	bad := path == ""
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || strings.Trim(seg, ".") == "" {
			bad = true
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				bad = true
			}
		}
	}
	if bad {
		return "", fmt.Errorf("gitlab: team %q: want a group's full path such as \"acme/sre\"", team)
	}
	return path, nil
}

// Permission maps a user's access level on the project (inherited memberships included).
func (c *Client) Permission(ctx context.Context, repo, user string) (forge.Permission, error) {
	users, resp, err := c.gl.Users.ListUsers(&gl.ListUsersOptions{Username: &user}, gl.WithContext(ctx))
	if err != nil {
		return forge.PermNone, wrap("look up user "+user, resp, err)
	}
	if len(users) == 0 {
		return forge.PermNone, nil
	}
	m, resp, err := c.gl.ProjectMembers.GetInheritedProjectMember(repo, users[0].ID, gl.WithContext(ctx))
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return forge.PermNone, nil
		}
		return forge.PermNone, wrap(fmt.Sprintf("membership of %s in %s", user, repo), resp, err)
	}
	for _, r := range roles {
		if m.AccessLevel >= r.level {
			return r.perm, nil
		}
	}
	return forge.PermNone, nil
}

// roles maps GitLab's roles (access levels), highest first, onto kubeplan's permission scale,
// with the names GitLab gives them: the one place GitLab's roles are spelled out.
var roles = []struct {
	level gl.AccessLevelValue
	perm  forge.Permission
	name  string
}{
	{gl.OwnerPermissions, forge.PermAdmin, "Owner"},
	{gl.MaintainerPermissions, forge.PermMaintain, "Maintainer"},
	{gl.DeveloperPermissions, forge.PermWrite, "Developer"},
	{gl.ReporterPermissions, forge.PermTriage, "Reporter"},
	{gl.GuestPermissions, forge.PermRead, "Guest"},
}

// PermissionName is a permission as GitLab says it: the role ("Reporter") that gives it.
func (c *Client) PermissionName(p forge.Permission) string {
	for _, r := range roles {
		if r.perm == p {
			return r.name
		}
	}
	return "no access"
}

// React awards an emoji ("eyes", "thumbsup"…) to a note.
func (c *Client) React(ctx context.Context, repo string, number int, noteID int64, emoji string) error {
	_, resp, err := c.gl.AwardEmoji.CreateMergeRequestAwardEmojiOnNote(repo, int64(number), noteID, &gl.CreateAwardEmojiOptions{Name: emoji}, gl.WithContext(ctx))
	return wrap(fmt.Sprintf("award %s on note %d of %s!%d", emoji, noteID, repo, number), resp, err)
}

// CreateIssueComment adds a note to an issue.
func (c *Client) CreateIssueComment(ctx context.Context, repo string, number int, body string) error {
	_, resp, err := c.gl.Notes.CreateIssueNote(repo, int64(number), &gl.CreateIssueNoteOptions{Body: &body}, gl.WithContext(ctx))
	return wrap(fmt.Sprintf("note on issue %s#%d", repo, number), resp, err)
}

// ReactToIssueComment awards an emoji to a note on an issue.
func (c *Client) ReactToIssueComment(ctx context.Context, repo string, number int, noteID int64, emoji string) error {
	_, resp, err := c.gl.AwardEmoji.CreateIssuesAwardEmojiOnNote(repo, int64(number), noteID, &gl.CreateAwardEmojiOptions{Name: emoji}, gl.WithContext(ctx))
	return wrap(fmt.Sprintf("award %s on note %d of issue %s#%d", emoji, noteID, repo, number), resp, err)
}

// MaxIssueLength is the largest issue description kubeplan may write.
func (c *Client) MaxIssueLength() int { return forge.MaxGitLabIssueDescription }

// FindIssue returns the oldest open issue kubeplan opened on the project whose description
// holds marker, or nil when there is none. Only issues kubeplan's own user created count, so
// an issue that copies the marker is never taken for kubeplan's.
func (c *Client) FindIssue(ctx context.Context, repo, marker string) (*forge.Issue, error) {
	self, err := c.Self(ctx)
	if err != nil {
		return nil, err
	}
	state, orderBy, sort := "opened", "created_at", "asc"
	opt := &gl.ListProjectIssuesOptions{ListOptions: gl.ListOptions{PerPage: 100, Page: 1}, State: &state, AuthorUsername: &self, OrderBy: &orderBy, Sort: &sort}
	for {
		list, resp, err := c.gl.Issues.ListProjectIssues(repo, opt, gl.WithContext(ctx))
		if err != nil {
			return nil, wrap(fmt.Sprintf("list open issues of %s", repo), resp, err)
		}
		for _, is := range list {
			if is.Author != nil && is.Author.Username == self && strings.Contains(is.Description, marker) {
				return glIssue(is), nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opt.Page = resp.NextPage
	}
}

func glIssue(is *gl.Issue) *forge.Issue {
	out := &forge.Issue{Number: int(is.IID), Title: is.Title, Body: is.Description, Closed: is.State == "closed", URL: is.WebURL}
	if is.Author != nil {
		out.Author = is.Author.Username
	}
	return out
}

// CreateIssue opens an issue with labels (GitLab creates the ones the project lacks).
func (c *Client) CreateIssue(ctx context.Context, repo, title, body string, labels []string) (*forge.Issue, error) {
	opt := &gl.CreateIssueOptions{Title: &title, Description: &body}
	if len(labels) > 0 {
		l := gl.LabelOptions(labels)
		opt.Labels = &l
	}
	is, resp, err := c.gl.Issues.CreateIssue(repo, opt, gl.WithContext(ctx))
	if err != nil {
		return nil, wrap(fmt.Sprintf("open an issue on %s", repo), resp, err)
	}
	return glIssue(is), nil
}

// EditIssue replaces an issue's title and description.
func (c *Client) EditIssue(ctx context.Context, repo string, number int, title, body string) error {
	_, resp, err := c.gl.Issues.UpdateIssue(repo, int64(number), &gl.UpdateIssueOptions{Title: &title, Description: &body}, gl.WithContext(ctx))
	return wrap(fmt.Sprintf("edit issue %s#%d", repo, number), resp, err)
}

// CloseIssue adds note to an issue (when not empty), then closes it.
func (c *Client) CloseIssue(ctx context.Context, repo string, number int, note string) error {
	if note != "" {
		_, resp, err := c.gl.Notes.CreateIssueNote(repo, int64(number), &gl.CreateIssueNoteOptions{Body: &note}, gl.WithContext(ctx))
		if err != nil {
			return wrap(fmt.Sprintf("note on issue %s#%d", repo, number), resp, err)
		}
	}
	event := "close"
	_, resp, err := c.gl.Issues.UpdateIssue(repo, int64(number), &gl.UpdateIssueOptions{StateEvent: &event}, gl.WithContext(ctx))
	return wrap(fmt.Sprintf("close issue %s#%d", repo, number), resp, err)
}
