// Package github implements kubeplan's forge operations on GitHub (github.com or Enterprise
// Server) with go-github, authenticated as a GitHub App installation or with a token.
package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"
	ghapp "github.com/google/go-github/v88/github"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/forge/forgehttp"
	"github.com/kubeplan/kubeplan/internal/redact"
)

// Config says how to reach GitHub.
type Config struct {
	// BaseURL is the API root: empty for github.com, https://HOST/api/v3/ for Enterprise Server.
	BaseURL string
	// Token authenticates as a user or bot (when no App is configured).
	Token string
	// AppID and PrivateKey (PEM) authenticate as a GitHub App; installation tokens are
	// minted per event's installation and refreshed before they expire (ghinstallation).
	AppID      int64
	PrivateKey []byte
	// HTTP tunes timeouts and retries (forgehttp.Options).
	HTTP forgehttp.Options
	Log  *slog.Logger
}

// Client is GitHub for one installation (or one token).
type Client struct {
	gh   *gh.Client
	http *http.Client
	// whoami asks GitHub who kubeplan is; the answer is cached once known.
	whoami func(context.Context) (string, error)
	mu     sync.Mutex
	self   string
}

// transport is the bottom of the client's HTTP stack for the configured API (forgehttp).
func (cfg Config) transport() (http.RoundTripper, error) {
	api := cfg.BaseURL
	if api == "" {
		api = "https://api.github.com/"
	}
	opts := cfg.HTTP
	if opts.Log == nil {
		opts.Log = cfg.Log
	}
	base, err := forgehttp.Transport(api, opts)
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	return base, nil
}

// New returns a client; installationID is ignored with token auth.
func New(cfg Config, installationID int64) (*Client, error) {
	base, err := cfg.transport()
	if err != nil {
		return nil, err
	}
	c := &Client{}
	var transport http.RoundTripper
	switch {
	case cfg.AppID != 0:
		itr, err := ghinstallation.New(base, cfg.AppID, installationID, cfg.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("github app %d installation %d: %w", cfg.AppID, installationID, err)
		}
		if cfg.BaseURL != "" {
			itr.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
		}
		// Without options ghinstallation sends the body "null", which the REST description of
		// this endpoint does not allow (a JSON object, every field optional): send {}.
		itr.InstallationTokenOptions = &ghapp.InstallationTokenOptions{}
		transport = itr
		// An App comments as "<slug>[bot]"; the slug comes from GET /app, authenticated as the App.
		apps, err := ghinstallation.NewAppsTransport(base, cfg.AppID, cfg.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("github app %d: %w", cfg.AppID, err)
		}
		appClient, err := newClient(&http.Client{Transport: apps}, cfg.BaseURL)
		if err != nil {
			return nil, err
		}
		c.whoami = func(ctx context.Context) (string, error) {
			app, resp, err := appClient.Apps.Get(ctx, "")
			if err != nil {
				return "", wrap("get the app", resp, err)
			}
			return app.GetSlug() + "[bot]", nil
		}
	case cfg.Token != "":
		transport = &tokenTransport{base: base, token: cfg.Token}
		c.whoami = func(ctx context.Context) (string, error) {
			u, resp, err := c.gh.Users.Get(ctx, "")
			if err != nil {
				return "", wrap("get the authenticated user", resp, err)
			}
			return u.GetLogin(), nil
		}
	default:
		return nil, errors.New("github: neither an App nor a token is configured")
	}
	c.http = &http.Client{Transport: transport}
	if c.gh, err = newClient(c.http, cfg.BaseURL); err != nil {
		return nil, err
	}
	return c, nil
}

// Installation finds the App installation that covers repo, for work no webhook names one
// for (a scheduled drift check). With token authentication it is 0.
func Installation(ctx context.Context, cfg Config, repo string) (int64, error) {
	if cfg.AppID == 0 {
		return 0, nil
	}
	base, err := cfg.transport()
	if err != nil {
		return 0, err
	}
	apps, err := ghinstallation.NewAppsTransport(base, cfg.AppID, cfg.PrivateKey)
	if err != nil {
		return 0, fmt.Errorf("github app %d: %w", cfg.AppID, err)
	}
	client, err := newClient(&http.Client{Transport: apps}, cfg.BaseURL)
	if err != nil {
		return 0, err
	}
	owner, name := split(repo)
	inst, resp, err := client.Apps.FindRepositoryInstallation(ctx, owner, name)
	if err != nil {
		return 0, wrap("find the app's installation on "+repo, resp, err)
	}
	return inst.GetID(), nil
}

func newClient(hc *http.Client, baseURL string) (*gh.Client, error) {
	client := gh.NewClient(hc)
	if baseURL == "" {
		return client, nil
	}
	client, err := client.WithEnterpriseURLs(baseURL, baseURL)
	if err != nil {
		return nil, fmt.Errorf("github base URL %q: %w", baseURL, err)
	}
	return client, nil
}

// Self is the login kubeplan's comments carry, so it recognises its own comments and never
// edits one that only imitates its marker.
func (c *Client) Self(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.self != "" {
		return c.self, nil
	}
	login, err := c.whoami(ctx)
	if err != nil {
		return "", err
	}
	c.self = login
	return login, nil
}

type tokenTransport struct {
	base  http.RoundTripper
	token string
}

func (t *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}

func split(repo string) (string, string) {
	owner, name, _ := strings.Cut(repo, "/")
	return owner, name
}

func wrap(op string, resp *gh.Response, err error) error {
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	return forge.Wrap("github", op, status, err)
}

// MaxCommentLength is the largest comment body kubeplan may write: GitHub's limit less the
// post marker CreateComment adds.
func (c *Client) MaxCommentLength() int { return forge.MaxGitHubComment - forge.PostMarkerLen }

// PullRequest returns a pull request's state.
func (c *Client) PullRequest(ctx context.Context, repo string, number int) (*forge.PullRequest, error) {
	owner, name := split(repo)
	pr, resp, err := c.gh.PullRequests.Get(ctx, owner, name, number)
	if err != nil {
		return nil, wrap(fmt.Sprintf("get pull request %s#%d", repo, number), resp, err)
	}
	out := &forge.PullRequest{
		Repo: repo, Number: number, Title: pr.GetTitle(), Author: pr.GetUser().GetLogin(),
		HeadSHA: pr.GetHead().GetSHA(), BaseSHA: pr.GetBase().GetSHA(), HeadRef: pr.GetHead().GetRef(), BaseRef: pr.GetBase().GetRef(),
		Draft: pr.GetDraft(), Closed: pr.GetState() == "closed", Merged: pr.GetMerged(),
		// mergeable is null while GitHub computes it in the background (after a push or a
		// change to the base); nil tells the caller to ask again later.
		Mergeable: pr.Mergeable,
		URL:       pr.GetHTMLURL(),
	}
	if repoURL := pr.GetBase().GetRepo().GetHTMLURL(); repoURL != "" {
		out.CommitURLPrefix = repoURL + "/commit/"
	}
	// Before the merge GitHub's merge_commit_sha is a test merge commit it recomputes at will;
	// only a merged pull request's (merge, squash or rebase result on the base) is kept, as on GitLab.
	if out.Merged {
		out.MergeCommitSHA = pr.GetMergeCommitSHA()
		out.MergedBy, out.MergedByBot = pr.GetMergedBy().GetLogin(), pr.GetMergedBy().GetType() == "Bot"
	}
	return out, nil
}

// ChangedFiles lists the paths a pull request changes (both sides of renames).
func (c *Client) ChangedFiles(ctx context.Context, repo string, number int) ([]string, error) {
	owner, name := split(repo)
	var out []string
	opts := &gh.ListOptions{PerPage: 100}
	for {
		files, resp, err := c.gh.PullRequests.ListFiles(ctx, owner, name, number, opts)
		if err != nil {
			return nil, wrap(fmt.Sprintf("list files of %s#%d", repo, number), resp, err)
		}
		for _, f := range files {
			out = append(out, f.GetFilename())
			if prev := f.GetPreviousFilename(); prev != "" {
				out = append(out, prev)
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// Archive downloads the repository at sha as a gzipped tarball.
func (c *Client) Archive(ctx context.Context, repo, sha string) (io.ReadCloser, error) {
	owner, name := split(repo)
	link, resp, err := c.gh.Repositories.GetArchiveLink(ctx, owner, name, gh.Tarball, &gh.RepositoryContentGetOptions{Ref: sha}, 3)
	if err != nil {
		return nil, wrap(fmt.Sprintf("archive link of %s@%s", repo, sha), resp, err)
	}
	// The link (codeload, on another host) carries a temporary token of its own in its query:
	// it must not reach an error, a log line or the job record (redact), and kubeplan's own
	// token is not sent there (forgehttp).
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link.String(), nil)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("github: download %s@%s: %w", repo, sha, err))
	}
	dl, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("github: download %s@%s: %w", repo, sha, redact.Error(err))
	}
	if dl.StatusCode != http.StatusOK {
		dl.Body.Close()
		return nil, fmt.Errorf("github: download %s@%s: %s", repo, sha, dl.Status)
	}
	return dl.Body, nil
}

// DefaultBranch returns the repository's default branch and the commit it points at.
func (c *Client) DefaultBranch(ctx context.Context, repo string) (branch, sha string, err error) {
	owner, name := split(repo)
	r, resp, err := c.gh.Repositories.Get(ctx, owner, name)
	if err != nil {
		return "", "", wrap("get repository "+repo, resp, err)
	}
	b, resp, err := c.gh.Repositories.GetBranch(ctx, owner, name, r.GetDefaultBranch(), 3)
	if err != nil {
		return "", "", wrap(fmt.Sprintf("get branch %s of %s", r.GetDefaultBranch(), repo), resp, err)
	}
	return b.GetName(), b.GetCommit().GetSHA(), nil
}

// Comments lists a pull request's comments, oldest first, as kubeplan wrote them (without
// the post markers CreateComment adds).
func (c *Client) Comments(ctx context.Context, repo string, number int) ([]forge.Comment, error) {
	out, err := c.comments(ctx, repo, number)
	for i := range out {
		out[i].Body = forge.StripPostMarker(out[i].Body)
	}
	return out, err
}

// comments lists a pull request's comments as GitHub stores them.
func (c *Client) comments(ctx context.Context, repo string, number int) ([]forge.Comment, error) {
	owner, name := split(repo)
	var out []forge.Comment
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		list, resp, err := c.gh.Issues.ListComments(ctx, owner, name, number, opts)
		if err != nil {
			return nil, wrap(fmt.Sprintf("list comments of %s#%d", repo, number), resp, err)
		}
		for _, cm := range list {
			out = append(out, forge.Comment{ID: cm.GetID(), Author: cm.GetUser().GetLogin(), Body: cm.GetBody()})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// CreateComment posts a comment once and returns its id: a comment GitHub stored before
// answering with a server error is found, not posted again (forge.CreateOnce).
func (c *Client) CreateComment(ctx context.Context, repo string, number int, body string) (int64, error) {
	owner, name := split(repo)
	return forge.CreateOnce(ctx, body, func(ctx context.Context, body string) (int64, int, error) {
		cm, resp, err := c.gh.Issues.CreateComment(ctx, owner, name, number, &gh.IssueComment{Body: &body})
		if err != nil {
			err = wrap(fmt.Sprintf("comment on %s#%d", repo, number), resp, err)
			if resp != nil {
				return 0, resp.StatusCode, err
			}
			return 0, 0, err
		}
		return cm.GetID(), 0, nil
	}, func(ctx context.Context) ([]forge.Comment, error) { return c.comments(ctx, repo, number) })
}

// UpdateComment replaces a comment's body.
func (c *Client) UpdateComment(ctx context.Context, repo string, number int, id int64, body string) error {
	owner, name := split(repo)
	_, resp, err := c.gh.Issues.EditComment(ctx, owner, name, id, &gh.IssueComment{Body: &body})
	return wrap(fmt.Sprintf("update comment %d on %s#%d", id, repo, number), resp, err)
}

// DeleteComment removes a comment (superseded continuation parts).
func (c *Client) DeleteComment(ctx context.Context, repo string, number int, id int64) error {
	owner, name := split(repo)
	resp, err := c.gh.Issues.DeleteComment(ctx, owner, name, id)
	return wrap(fmt.Sprintf("delete comment %d on %s#%d", id, repo, number), resp, err)
}

// SetStatus sets a commit status on sha.
func (c *Client) SetStatus(ctx context.Context, repo, sha string, s forge.Status) error {
	owner, name := split(repo)
	state := string(s.State)
	st := &gh.RepoStatus{State: &state, Context: &s.Context, Description: &s.Description}
	if s.TargetURL != "" {
		st.TargetURL = &s.TargetURL
	}
	_, resp, err := c.gh.Repositories.CreateStatus(ctx, owner, name, sha, st)
	return wrap(fmt.Sprintf("set status %s on %s@%s", s.Context, repo, sha), resp, err)
}

// Reviews lists a pull request's submitted reviews, oldest first as GitHub lists them (pending
// reviews, visible only to their author, are left out). A dismissed review is neither approving
// nor requesting changes; its CommitSHA is the head it was given on.
func (c *Client) Reviews(ctx context.Context, repo string, number int) ([]forge.Review, error) {
	owner, name := split(repo)
	var out []forge.Review
	opts := &gh.ListOptions{PerPage: 100}
	for {
		list, resp, err := c.gh.PullRequests.ListReviews(ctx, owner, name, number, opts)
		if err != nil {
			return nil, wrap(fmt.Sprintf("list reviews of %s#%d", repo, number), resp, err)
		}
		for _, r := range list {
			state := strings.ToUpper(r.GetState())
			if state == "PENDING" {
				continue
			}
			out = append(out, forge.Review{Author: r.GetUser().GetLogin(), Approved: state == "APPROVED",
				ChangesRequested: state == "CHANGES_REQUESTED", Dismissed: state == "DISMISSED", CommitSHA: r.GetCommitID()})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// IsMember says whether user is an active member of a team, named "org/team-slug" (a leading
// "@", as CODEOWNERS writes teams, is allowed). GitHub answers 404 both for a user outside the
// team and for a team the credentials cannot see (an App needs the organization's members:read
// permission): both are "not a member". A pending invitation is not membership.
func (c *Client) IsMember(ctx context.Context, team, user string) (bool, error) {
	org, slug, err := parseTeam(team)
	if err != nil {
		return false, err
	}
	if user == "" || strings.Trim(user, ".") == "" {
		return false, nil
	}
	m, resp, err := c.gh.Teams.GetTeamMembershipBySlug(ctx, org, slug, url.PathEscape(user))
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return false, nil
		}
		return false, wrap(fmt.Sprintf("membership of %s in team %s", user, team), resp, err)
	}
	return m.GetState() == "active", nil
}

// parseTeam splits "org/team-slug" (or "@org/team-slug").
func parseTeam(team string) (org, slug string, err error) {
	org, slug, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(team), "@"), "/")
	if !ok || !validName(org) || !validName(slug) {
		return "", "", fmt.Errorf("github: team %q: want \"org/team-slug\"", team)
	}
	return org, slug, nil
}

// validName accepts an organization login or team slug: letters, digits, ".", "_" and "-",
// never a path segment such as "..".
func validName(s string) bool {
	if s == "" || strings.Trim(s, ".") == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Permission returns a user's permission on the repository.
func (c *Client) Permission(ctx context.Context, repo, user string) (forge.Permission, error) {
	owner, name := split(repo)
	// The permission field folds maintain into write and triage into read; role_name (not in
	// go-github v60's type) keeps them apart, and a maintainer is an admin to kubeplan.
	req, err := c.gh.NewRequest(http.MethodGet, fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", owner, name, url.PathEscape(user)), nil)
	if err != nil {
		return forge.PermNone, fmt.Errorf("github: permission of %s on %s: %w", user, repo, err)
	}
	var p struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	resp, err := c.gh.Do(ctx, req, &p)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return forge.PermNone, nil
		}
		return forge.PermNone, wrap(fmt.Sprintf("permission of %s on %s", user, repo), resp, err)
	}
	switch forge.Permission(p.RoleName) {
	case forge.PermRead, forge.PermTriage, forge.PermWrite, forge.PermMaintain, forge.PermAdmin:
		return forge.Permission(p.RoleName), nil
	}
	// Custom repository roles have their own names; their base permission is what counts.
	return forge.Permission(p.Permission), nil
}

// PermissionName is a permission as GitHub says it: kubeplan's permission scale is GitHub's
// repository roles (read, triage, write, maintain, admin).
func (c *Client) PermissionName(p forge.Permission) string {
	if p == "" {
		return string(forge.PermNone)
	}
	return string(p)
}

// React adds a reaction ("eyes", "+1", "-1", "rocket"…) to a comment.
func (c *Client) React(ctx context.Context, repo string, _ int, commentID int64, reaction string) error {
	owner, name := split(repo)
	_, resp, err := c.gh.Reactions.CreateIssueCommentReaction(ctx, owner, name, commentID, reaction)
	return wrap(fmt.Sprintf("react to comment %d on %s", commentID, repo), resp, err)
}

// CreateIssueComment comments on an issue (GitHub comments on issues and pull requests alike).
func (c *Client) CreateIssueComment(ctx context.Context, repo string, number int, body string) error {
	_, err := c.CreateComment(ctx, repo, number, body)
	return err
}

// ReactToIssueComment adds a reaction to a comment on an issue.
func (c *Client) ReactToIssueComment(ctx context.Context, repo string, number int, commentID int64, reaction string) error {
	return c.React(ctx, repo, number, commentID, reaction)
}

// MaxIssueLength is the largest issue body kubeplan may write (GitHub's comment limit holds
// for issue bodies too).
func (c *Client) MaxIssueLength() int { return forge.MaxGitHubComment }

// FindIssue returns the oldest open issue kubeplan opened on the repository whose body holds
// marker, or nil when there is none. Only issues kubeplan's own account created count, so an
// issue that copies the marker is never taken for kubeplan's.
func (c *Client) FindIssue(ctx context.Context, repo, marker string) (*forge.Issue, error) {
	self, err := c.Self(ctx)
	if err != nil {
		return nil, err
	}
	owner, name := split(repo)
	opts := &gh.IssueListByRepoOptions{State: "open", Creator: self, Sort: "created", Direction: "asc", ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		list, resp, err := c.gh.Issues.ListByRepo(ctx, owner, name, opts)
		if err != nil {
			return nil, wrap(fmt.Sprintf("list open issues of %s", repo), resp, err)
		}
		for _, is := range list {
			// GitHub lists pull requests among issues.
			if is.PullRequestLinks == nil && is.GetUser().GetLogin() == self && strings.Contains(is.GetBody(), marker) {
				return ghIssue(is), nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}

func ghIssue(is *gh.Issue) *forge.Issue {
	return &forge.Issue{Number: is.GetNumber(), Title: is.GetTitle(), Body: is.GetBody(), Author: is.GetUser().GetLogin(),
		Closed: is.GetState() == "closed", URL: is.GetHTMLURL()}
}

// CreateIssue opens an issue. GitHub creates labels it does not know yet (or drops them
// silently where the credentials may not set labels): they help people filter, FindIssue
// does not rely on them.
func (c *Client) CreateIssue(ctx context.Context, repo, title, body string, labels []string) (*forge.Issue, error) {
	owner, name := split(repo)
	req := &gh.IssueRequest{Title: &title, Body: &body}
	if len(labels) > 0 {
		req.Labels = &labels
	}
	is, resp, err := c.gh.Issues.Create(ctx, owner, name, req)
	if err != nil {
		return nil, wrap(fmt.Sprintf("open an issue on %s", repo), resp, err)
	}
	return ghIssue(is), nil
}

// EditIssue replaces an issue's title and body.
func (c *Client) EditIssue(ctx context.Context, repo string, number int, title, body string) error {
	owner, name := split(repo)
	_, resp, err := c.gh.Issues.Edit(ctx, owner, name, number, &gh.IssueRequest{Title: &title, Body: &body})
	return wrap(fmt.Sprintf("edit issue %s#%d", repo, number), resp, err)
}

// CloseIssue comments note on an issue (when not empty), then closes it as completed.
func (c *Client) CloseIssue(ctx context.Context, repo string, number int, note string) error {
	owner, name := split(repo)
	if note != "" {
		_, resp, err := c.gh.Issues.CreateComment(ctx, owner, name, number, &gh.IssueComment{Body: &note})
		if err != nil {
			return wrap(fmt.Sprintf("comment on issue %s#%d", repo, number), resp, err)
		}
	}
	state, reason := "closed", "completed"
	_, resp, err := c.gh.Issues.Edit(ctx, owner, name, number, &gh.IssueRequest{State: &state, StateReason: &reason})
	return wrap(fmt.Sprintf("close issue %s#%d", repo, number), resp, err)
}
