package forgeemu

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	gh "github.com/google/go-github/v60/github"

	"github.com/kubeplan/kubeplan/forge"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ghNotFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
}

// githubAPI serves the GitHub REST endpoints kubeplan uses.
func (e *Emulator) githubAPI() http.Handler {
	mux := http.NewServeMux()
	repoRoute := func(method, suffix string, h func(w http.ResponseWriter, r *http.Request, repo *Repo)) {
		mux.HandleFunc(method+" /repos/{owner}/{repo}"+suffix, func(w http.ResponseWriter, r *http.Request) {
			e.mu.Lock()
			defer e.mu.Unlock()
			auth := r.Header.Get("Authorization")
			if !e.validToken(auth) {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
				return
			}
			name := r.PathValue("owner") + "/" + r.PathValue("repo")
			repo := e.repo(name)
			// A repository the credentials lost, or outside the installation's selection, is
			// not found, as GitHub says of what a token cannot see.
			isToken := strings.TrimPrefix(strings.TrimPrefix(auth, "Bearer "), "token ") == e.Token
			if ut, isUser := e.userOf("github", auth); isUser {
				// A person's token sees what they may see; the rest is not found.
				if repo == nil {
					ghNotFound(w)
					return
				}
				if _, sees := e.githubSees(ut, repo); !sees {
					ghNotFound(w)
					return
				}
				h(w, r, repo)
				return
			}
			if repo == nil || e.revoked[name] || !isToken && !e.installationCovers(name) {
				ghNotFound(w)
				return
			}
			h(w, r, repo)
		})
	}
	withPR := func(h func(w http.ResponseWriter, r *http.Request, repo *Repo, pr *PR)) func(http.ResponseWriter, *http.Request, *Repo) {
		return func(w http.ResponseWriter, r *http.Request, repo *Repo) {
			n, _ := strconv.Atoi(r.PathValue("number"))
			pr := repo.PRs[n]
			if pr == nil {
				ghNotFound(w)
				return
			}
			h(w, r, repo, pr)
		}
	}
	repoRoute("GET", "/pulls/{number}", withPR(func(w http.ResponseWriter, r *http.Request, repo *Repo, pr *PR) {
		writeJSON(w, http.StatusOK, e.ghPull(repo, pr))
	}))
	repoRoute("GET", "/pulls/{number}/files", withPR(func(w http.ResponseWriter, r *http.Request, repo *Repo, pr *PR) {
		var files []*gh.CommitFile
		for _, p := range repo.changedFiles(pr) {
			status := "modified"
			if _, ok := repo.commits[pr.BaseSHA][p]; !ok {
				status = "added"
			} else if _, ok := repo.commits[pr.HeadSHA][p]; !ok {
				status = "removed"
			}
			files = append(files, &gh.CommitFile{Filename: gh.String(p), Status: gh.String(status), SHA: gh.String(pr.HeadSHA),
				BlobURL: gh.String(fmt.Sprintf("%s/%s/blob/%s/%s", e.URL(), repo.FullName, pr.HeadSHA, p))})
		}
		paginate(w, r, files)
	}))
	repoRoute("GET", "/tarball/{ref}", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		if _, ok := repo.commits[r.PathValue("ref")]; !ok {
			ghNotFound(w)
			return
		}
		// As GitHub does for a private repository: to codeload's host, with a temporary token.
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		token := "AAAC" + strings.ToUpper(hex.EncodeToString(b))
		e.archiveTokens[token] = true
		http.Redirect(w, r, fmt.Sprintf("%s/%s/legacy.tar.gz/%s?token=%s", e.codeload.URL, repo.FullName, r.PathValue("ref"), token), http.StatusFound)
	})
	e.githubIssueRoutes(repoRoute)
	// An issue's comments and a pull request's are the same endpoints.
	issueOr := func(h func(w http.ResponseWriter, r *http.Request, repo *Repo, is *Issue), pr func(http.ResponseWriter, *http.Request, *Repo)) func(http.ResponseWriter, *http.Request, *Repo) {
		return func(w http.ResponseWriter, r *http.Request, repo *Repo) {
			n, _ := strconv.Atoi(r.PathValue("number"))
			if is := repo.Issues[n]; is != nil {
				h(w, r, repo, is)
				return
			}
			pr(w, r, repo)
		}
	}
	repoRoute("GET", "/issues/{number}/comments", issueOr(func(w http.ResponseWriter, r *http.Request, repo *Repo, is *Issue) {
		out := []*gh.IssueComment{}
		for _, c := range is.Comments {
			out = append(out, e.ghIssueComment(repo, is, c))
		}
		paginate(w, r, out)
	}, withPR(func(w http.ResponseWriter, r *http.Request, repo *Repo, pr *PR) {
		var out []*gh.IssueComment
		for _, c := range pr.Comments {
			out = append(out, e.ghComment(repo, pr, c))
		}
		paginate(w, r, out)
	})))
	newComment := func(w http.ResponseWriter, r *http.Request) *Comment {
		var in gh.IssueComment
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.GetBody() == "" {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
			return nil
		}
		if len(in.GetBody()) > forge.MaxGitHubComment {
			ghTooLong(w, "IssueComment")
			return nil
		}
		return &Comment{ID: e.id(), Author: e.BotLogin, Body: in.GetBody(), Created: e.now(), Updated: e.now()}
	}
	repoRoute("POST", "/issues/{number}/comments", issueOr(func(w http.ResponseWriter, r *http.Request, repo *Repo, is *Issue) {
		if c := newComment(w, r); c != nil {
			is.Comments = append(is.Comments, c)
			writeJSON(w, http.StatusCreated, e.ghIssueComment(repo, is, c))
		}
	}, withPR(func(w http.ResponseWriter, r *http.Request, repo *Repo, pr *PR) {
		if c := newComment(w, r); c != nil {
			pr.Comments = append(pr.Comments, c)
			writeJSON(w, http.StatusCreated, e.ghComment(repo, pr, c))
		}
	})))
	findComment := func(repo *Repo, id string) (*PR, *Comment) {
		n, _ := strconv.ParseInt(id, 10, 64)
		for _, pr := range repo.PRs {
			for _, c := range pr.Comments {
				if c.ID == n {
					return pr, c
				}
			}
		}
		return nil, nil
	}
	repoRoute("PATCH", "/issues/comments/{id}", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		pr, c := findComment(repo, r.PathValue("id"))
		if c == nil {
			ghNotFound(w)
			return
		}
		var in gh.IssueComment
		if json.NewDecoder(r.Body).Decode(&in) != nil || len(in.GetBody()) > forge.MaxGitHubComment {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
			return
		}
		c.Body, c.Updated = in.GetBody(), e.now()
		writeJSON(w, http.StatusOK, e.ghComment(repo, pr, c))
	})
	repoRoute("DELETE", "/issues/comments/{id}", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		pr, c := findComment(repo, r.PathValue("id"))
		if c == nil {
			ghNotFound(w)
			return
		}
		for i, x := range pr.Comments {
			if x == c {
				pr.Comments = append(pr.Comments[:i], pr.Comments[i+1:]...)
				break
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	repoRoute("POST", "/issues/comments/{id}/reactions", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		_, c := findComment(repo, r.PathValue("id"))
		if c == nil { // a comment on an issue (GitHub's endpoint is the same)
			c = findIssueComment(repo, r.PathValue("id"))
		}
		if c == nil {
			ghNotFound(w)
			return
		}
		var in struct{ Content string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		c.Reactions = append(c.Reactions, in.Content)
		writeJSON(w, http.StatusCreated, &gh.Reaction{ID: gh.Int64(e.id()), Content: gh.String(in.Content), User: e.ghUser(e.BotLogin)})
	})
	repoRoute("POST", "/statuses/{sha}", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		var in gh.RepoStatus
		if json.NewDecoder(r.Body).Decode(&in) != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
			return
		}
		sha := r.PathValue("sha")
		if _, ok := repo.commits[sha]; !ok {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "No commit found for SHA: " + sha})
			return
		}
		switch in.GetState() {
		case "pending", "success", "failure", "error":
		default:
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
			return
		}
		if utf8.RuneCountInString(in.GetDescription()) > forge.MaxStatusDescription {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": fmt.Sprintf("Validation Failed: description is too long (maximum is %d characters)", forge.MaxStatusDescription)})
			return
		}
		st := forge.Status{Context: in.GetContext(), State: forge.State(in.GetState()), Description: in.GetDescription(), TargetURL: in.GetTargetURL()}
		for _, pr := range repo.PRs {
			if pr.HeadSHA == sha || pr.MergeCommitSHA == sha || (pr.Group != nil && pr.Group.HeadSHA == sha) || hasStatuses(pr, sha) {
				pr.Statuses[sha] = append(pr.Statuses[sha], st)
			}
		}
		in.ID = gh.Int64(e.id())
		in.Creator = e.ghUser(e.BotLogin)
		writeJSON(w, http.StatusCreated, &in)
	})
	repoRoute("GET", "/pulls/{number}/reviews", withPR(func(w http.ResponseWriter, r *http.Request, repo *Repo, pr *PR) {
		// Oldest first, as GitHub lists them; a dismissed review keeps its place as DISMISSED.
		out := []*gh.PullRequestReview{}
		for _, rv := range pr.Reviews {
			out = append(out, e.ghReview(repo, pr, rv, false))
		}
		paginate(w, r, out)
	}))
	repoRoute("GET", "/collaborators/{user}/permission", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		p, ok := repo.Permissions[r.PathValue("user")]
		if !ok {
			p = forge.PermNone
		}
		// The permission field folds maintain into write and triage into read, as GitHub does.
		field := map[forge.Permission]string{forge.PermMaintain: "write", forge.PermTriage: "read"}[p]
		if field == "" {
			field = string(p)
		}
		writeJSON(w, http.StatusOK, map[string]any{"permission": field, "role_name": string(p), "user": e.ghUser(r.PathValue("user"))})
	})
	mux.HandleFunc("GET /orgs/{org}/teams/{slug}/memberships/{user}", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if !e.validToken(r.Header.Get("Authorization")) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		team, user := r.PathValue("org")+"/"+r.PathValue("slug"), r.PathValue("user")
		// GitHub answers 404 both for a missing team and for a user who is not in it.
		if !e.inGroup(team, user, false) {
			ghNotFound(w)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"url": fmt.Sprintf("%s/api/v3/teams/%d/memberships/%s", e.URL(), e.groups[team], user),
			"role": "member", "state": "active"})
	})
	repoRoute("GET", "/branches/{branch}", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		// Only the default branch has a head here (pull requests' branches live in their PRs).
		if r.PathValue("branch") != repo.Default {
			ghNotFound(w)
			return
		}
		writeJSON(w, http.StatusOK, &gh.Branch{Name: gh.String(repo.Default), Commit: &gh.RepositoryCommit{SHA: gh.String(repo.head)}})
	})
	repoRoute("GET", "", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		// permissions are the authenticated user's on the repository (an installation: write).
		out := e.ghRepo(repo)
		p, ok := repo.Permissions[e.BotLogin]
		if !ok {
			p = forge.PermWrite
		}
		if ut, isUser := e.userOf("github", r.Header.Get("Authorization")); isUser {
			p, _ = e.githubSees(ut, repo)
		}
		rank := map[forge.Permission]int{forge.PermRead: 1, forge.PermTriage: 2, forge.PermWrite: 3, forge.PermMaintain: 4, forge.PermAdmin: 5}[p]
		out.Permissions = map[string]bool{"pull": rank >= 1, "triage": rank >= 2, "push": rank >= 3, "maintain": rank >= 4, "admin": rank >= 5}
		writeJSON(w, http.StatusOK, out)
	})
	e.installationRoutes(mux)
	mux.HandleFunc("POST /app-manifests/{code}/conversions", e.convertManifest)
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", e.mintInstallationToken)
	mux.HandleFunc("GET /app", e.asApp(e.getApp))
	mux.HandleFunc("GET /user", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if ut, isUser := e.userOf("github", r.Header.Get("Authorization")); isUser {
			writeJSON(w, http.StatusOK, e.ghUser(ut.login))
			return
		}
		// Installation tokens cannot read /user on GitHub either.
		if r.Header.Get("Authorization") != "Bearer "+e.Token && r.Header.Get("Authorization") != "token "+e.Token {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		writeJSON(w, http.StatusOK, e.ghUser(e.BotLogin))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { ghNotFound(w) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// GitHub tells a classic token its scopes on every answer.
		e.mu.Lock()
		scopes := e.TokenScopes
		classic := e.Token != "" && strings.TrimPrefix(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "token ") == e.Token
		e.mu.Unlock()
		if classic && scopes != nil {
			w.Header().Set("X-OAuth-Scopes", strings.Join(scopes, ", "))
		}
		mux.ServeHTTP(w, r)
	})
}

func hasStatuses(pr *PR, sha string) bool { _, ok := pr.Statuses[sha]; return ok }

// githubCodeload serves tarballs like codeload.github.com: gzipped, one top-level directory,
// to a link with a token the API handed out (a private repository's), never to credentials.
func (e *Emulator) githubCodeload() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /{owner}/{repo}/legacy.tar.gz/{sha}?token=…
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if len(parts) != 4 {
			ghNotFound(w)
			return
		}
		e.mu.Lock()
		if !e.archiveTokens[r.URL.Query().Get("token")] {
			e.mu.Unlock()
			ghNotFound(w)
			return
		}
		repo := e.repo(parts[0] + "/" + parts[1])
		var files map[string]string
		if repo != nil {
			files = repo.commits[parts[3]]
		}
		e.mu.Unlock()
		if files == nil {
			ghNotFound(w)
			return
		}
		data, err := tarball(fmt.Sprintf("%s-%s-%s", parts[0], parts[1], parts[3][:7]), parts[3], files)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-gzip")
		_, _ = w.Write(data)
	})
}

// tarball packs files under a top-level directory, with the commit in a pax global header.
func tarball(top, sha string, files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": sha}}); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/", Mode: 0o755}); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: top + "/" + n, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// paginate answers a list page by page with GitHub's Link header (per_page, page).
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T) {
	start, end, page, per := pageBounds(r, 30, len(items))
	if end < len(items) {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page+1))
		q.Set("per_page", strconv.Itoa(per))
		next := *r.URL
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s/api/v3%s>; rel="next"`, r.Host, next.RequestURI()))
	}
	page1 := items[start:end]
	if page1 == nil {
		page1 = []T{}
	}
	writeJSON(w, http.StatusOK, page1)
}

func (e *Emulator) ghUser(login string) *gh.User {
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	u := &gh.User{Login: gh.String(login), ID: gh.Int64(e.userID(login)), Type: gh.String(typ),
		HTMLURL: gh.String(e.URL() + "/" + login), URL: gh.String(e.URL() + "/api/v3/users/" + login), SiteAdmin: gh.Bool(false)}
	if name := e.userNames[login]; name != "" {
		u.Name = gh.String(name)
	}
	return u
}

func (e *Emulator) ghRepo(r *Repo) *gh.Repository {
	owner, name, _ := strings.Cut(r.FullName, "/")
	return &gh.Repository{ID: gh.Int64(r.ID), Name: gh.String(name), FullName: gh.String(r.FullName), Owner: e.ghUser(owner),
		Private: gh.Bool(true), DefaultBranch: gh.String(r.Default), HTMLURL: gh.String(e.URL() + "/" + r.FullName),
		URL: gh.String(e.URL() + "/api/v3/repos/" + r.FullName), Visibility: gh.String("private")}
}

func (e *Emulator) ghPull(r *Repo, pr *PR) *gh.PullRequest {
	owner, _, _ := strings.Cut(r.FullName, "/")
	state := pr.State
	out := &gh.PullRequest{ID: gh.Int64(pr.ID), Number: gh.Int(pr.Number), State: &state, Title: gh.String(pr.Title),
		User: e.ghUser(pr.Author), Draft: gh.Bool(pr.Draft), Merged: gh.Bool(pr.Merged),
		CreatedAt: &gh.Timestamp{Time: pr.Created}, UpdatedAt: &gh.Timestamp{Time: pr.Created},
		HTMLURL:   gh.String(fmt.Sprintf("%s/%s/pull/%d", e.URL(), r.FullName, pr.Number)),
		URL:       gh.String(fmt.Sprintf("%s/api/v3/repos/%s/pulls/%d", e.URL(), r.FullName, pr.Number)),
		IssueURL:  gh.String(fmt.Sprintf("%s/api/v3/repos/%s/issues/%d", e.URL(), r.FullName, pr.Number)),
		Head:      &gh.PullRequestBranch{Label: gh.String(owner + ":" + pr.HeadRef), Ref: gh.String(pr.HeadRef), SHA: gh.String(pr.HeadSHA), Repo: e.ghRepo(r), User: e.ghUser(owner)},
		Base:      &gh.PullRequestBranch{Label: gh.String(owner + ":" + pr.BaseRef), Ref: gh.String(pr.BaseRef), SHA: gh.String(pr.BaseSHA), Repo: e.ghRepo(r), User: e.ghUser(owner)},
		Additions: gh.Int(0), Deletions: gh.Int(0), ChangedFiles: gh.Int(len(r.changedFiles(pr))), Comments: gh.Int(len(pr.Comments)),
		AuthorAssociation: gh.String("MEMBER"), Labels: []*gh.Label{}, Assignees: []*gh.User{}, RequestedReviewers: []*gh.User{},
	}
	// mergeable is null while GitHub computes it (and once the pull request is closed);
	// merge_commit_sha is the test merge commit while open and mergeable, the merge commit
	// once merged.
	out.MergeableState = gh.String("unknown")
	switch {
	case pr.Merged:
		out.MergeCommitSHA = gh.String(pr.MergeCommitSHA)
		out.MergedAt = &gh.Timestamp{Time: pr.MergedAt}
		out.MergedBy = e.ghUser(pr.MergedBy)
	case pr.State != "open" || pr.Mergeable == nil:
	case !*pr.Mergeable:
		out.Mergeable, out.Rebaseable, out.MergeableState = gh.Bool(false), gh.Bool(false), gh.String("dirty")
	default:
		out.Mergeable, out.Rebaseable, out.MergeableState = gh.Bool(true), gh.Bool(true), gh.String("clean")
		if pr.Draft {
			out.MergeableState = gh.String("draft")
		}
		out.MergeCommitSHA = gh.String(testMergeSHA(pr))
	}
	if pr.State == "closed" {
		out.ClosedAt = &gh.Timestamp{Time: pr.ClosedAt}
	}
	return out
}

// ghReview is a review as the REST API shows it (state upper-case) or, for webhooks, as the
// pull_request_review event carries it (state lower-case: "approved", "changes_requested"…).
func (e *Emulator) ghReview(r *Repo, pr *PR, rv *Review, webhook bool) *gh.PullRequestReview {
	state := rv.State
	if webhook {
		state = strings.ToLower(state)
	}
	html := fmt.Sprintf("%s/%s/pull/%d#pullrequestreview-%d", e.URL(), r.FullName, pr.Number, rv.ID)
	return &gh.PullRequestReview{ID: gh.Int64(rv.ID), NodeID: gh.String(fmt.Sprintf("PRR_emu%d", rv.ID)), User: e.ghUser(rv.Author),
		Body: gh.String(rv.Body), State: gh.String(state), CommitID: gh.String(rv.CommitSHA), SubmittedAt: &gh.Timestamp{Time: rv.Submitted},
		HTMLURL: gh.String(html), PullRequestURL: gh.String(fmt.Sprintf("%s/api/v3/repos/%s/pulls/%d", e.URL(), r.FullName, pr.Number)),
		AuthorAssociation: gh.String("MEMBER")}
}

func (e *Emulator) ghComment(r *Repo, pr *PR, c *Comment) *gh.IssueComment {
	return &gh.IssueComment{ID: gh.Int64(c.ID), Body: gh.String(c.Body), User: e.ghUser(c.Author),
		CreatedAt: &gh.Timestamp{Time: c.Created}, UpdatedAt: &gh.Timestamp{Time: c.Updated}, AuthorAssociation: gh.String("MEMBER"),
		HTMLURL:  gh.String(fmt.Sprintf("%s/%s/pull/%d#issuecomment-%d", e.URL(), r.FullName, pr.Number, c.ID)),
		IssueURL: gh.String(fmt.Sprintf("%s/api/v3/repos/%s/issues/%d", e.URL(), r.FullName, pr.Number)),
		URL:      gh.String(fmt.Sprintf("%s/api/v3/repos/%s/issues/comments/%d", e.URL(), r.FullName, c.ID))}
}

// pageBounds reads per_page and page as both forges do (at most 100 per page) and returns the
// slice bounds of that page.
func pageBounds(r *http.Request, defaultPer, n int) (start, end, page, per int) {
	per, _ = strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 || per > 100 {
		per = defaultPer
	}
	page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	start = min((page-1)*per, n)
	return start, min(start+per, n), page, per
}
