package forgeemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/kubeplan/kubeplan/forge"
)

// Issue is an issue (GitHub and GitLab). Issues and pull requests share their numbers, as on
// GitHub; on GitLab an issue's iid merely skips the numbers merge requests took.
type Issue struct {
	Number      int
	ID          int64
	Title, Body string
	Author      string
	State       string // open, closed
	Labels      []string
	Comments    []*Comment
	Created     time.Time
	Updated     time.Time
	ClosedAt    time.Time
}

// nextNumber is the number of the next pull request or issue.
func (r *Repo) nextNumber() int { return len(r.PRs) + len(r.Issues) + 1 }

// Issues returns copies of a repository's issues, by number, for assertions.
func (e *Emulator) Issues(repo string) []Issue {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Issue
	for _, is := range e.repos[repo].Issues {
		c := *is
		c.Labels = append([]string(nil), is.Labels...)
		c.Comments = make([]*Comment, len(is.Comments))
		for i, cm := range is.Comments {
			cc := *cm
			c.Comments[i] = &cc
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}

// OpenIssue opens an issue as author (a person, or the bot to stage kubeplan's own) and
// returns its number.
func (e *Emulator) OpenIssue(repo, author, title, body string, labels ...string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.openIssue(e.repos[repo], author, title, body, labels).Number
}

func (e *Emulator) openIssue(r *Repo, author, title, body string, labels []string) *Issue {
	is := &Issue{Number: r.nextNumber(), ID: e.id(), Title: title, Body: body, Author: author, State: "open", Labels: labels,
		Created: e.now(), Updated: e.now()}
	if r.Issues == nil {
		r.Issues = map[int]*Issue{}
	}
	r.Issues[is.Number] = is
	e.userID(author)
	return is
}

// Writes counts the API requests that could change state (every method but GET and HEAD)
// served so far, whatever their answer: what "changes nothing on the forge" is measured by.
func (e *Emulator) Writes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.writes
}

// hasLabels reports whether every label of want (comma-separated, as both forges take them)
// is on the issue.
func hasLabels(is *Issue, want string) bool {
	for _, l := range strings.Split(want, ",") {
		if l = strings.TrimSpace(l); l != "" && !contains(is.Labels, l) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sortedIssues lists a repository's issues oldest first, or newest first when desc.
func sortedIssues(r *Repo, desc bool) []*Issue {
	out := make([]*Issue, 0, len(r.Issues))
	for _, is := range r.Issues {
		out = append(out, is)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number != desc })
	return out
}

// githubIssueRoutes serves GitHub's issue endpoints: list (issues and pull requests, as
// GitHub lists them, filtered by state, creator and labels), create, get, edit (title, body,
// state); the comment endpoints are shared with pull requests (github.go).
func (e *Emulator) githubIssueRoutes(repoRoute func(method, suffix string, h func(w http.ResponseWriter, r *http.Request, repo *Repo))) {
	repoRoute("GET", "/issues", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		q := r.URL.Query()
		state := q.Get("state")
		if state == "" {
			state = "open"
		}
		keep := func(st, author string) bool {
			return (state == "all" || st == state) && (q.Get("creator") == "" || q.Get("creator") == author)
		}
		// GitHub's default order is newest first.
		type entry struct {
			n int
			v *gh.Issue
		}
		var all []entry
		for _, is := range repo.Issues {
			if keep(is.State, is.Author) && hasLabels(is, q.Get("labels")) {
				all = append(all, entry{is.Number, e.ghIssue(repo, is)})
			}
		}
		for _, pr := range repo.PRs {
			if keep(pr.State, pr.Author) && q.Get("labels") == "" {
				v := &gh.Issue{ID: gh.Int64(pr.ID), Number: gh.Int(pr.Number), State: gh.String(pr.State), Title: gh.String(pr.Title),
					User: e.ghUser(pr.Author), Labels: []*gh.Label{}, CreatedAt: &gh.Timestamp{Time: pr.Created},
					PullRequestLinks: &gh.PullRequestLinks{URL: gh.String(fmt.Sprintf("%s/api/v3/repos/%s/pulls/%d", e.URL(), repo.FullName, pr.Number))}}
				all = append(all, entry{pr.Number, v})
			}
		}
		asc := q.Get("direction") == "asc"
		sort.Slice(all, func(i, j int) bool { return all[i].n < all[j].n == asc })
		out := make([]*gh.Issue, len(all))
		for i, x := range all {
			out[i] = x.v
		}
		paginate(w, r, out)
	})
	repoRoute("POST", "/issues", func(w http.ResponseWriter, r *http.Request, repo *Repo) {
		var in gh.IssueRequest
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.GetTitle() == "" {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
			return
		}
		if len(in.GetBody()) > forge.MaxGitHubComment {
			ghTooLong(w, "Issue")
			return
		}
		var labels []string
		if in.Labels != nil {
			labels = *in.Labels
		}
		is := e.openIssue(repo, e.BotLogin, in.GetTitle(), in.GetBody(), labels)
		writeJSON(w, http.StatusCreated, e.ghIssue(repo, is))
	})
	withIssue := func(h func(w http.ResponseWriter, r *http.Request, repo *Repo, is *Issue)) func(http.ResponseWriter, *http.Request, *Repo) {
		return func(w http.ResponseWriter, r *http.Request, repo *Repo) {
			n, _ := strconv.Atoi(r.PathValue("number"))
			is := repo.Issues[n]
			if is == nil {
				ghNotFound(w)
				return
			}
			h(w, r, repo, is)
		}
	}
	repoRoute("GET", "/issues/{number}", withIssue(func(w http.ResponseWriter, r *http.Request, repo *Repo, is *Issue) {
		writeJSON(w, http.StatusOK, e.ghIssue(repo, is))
	}))
	repoRoute("PATCH", "/issues/{number}", withIssue(func(w http.ResponseWriter, r *http.Request, repo *Repo, is *Issue) {
		var in gh.IssueRequest
		if json.NewDecoder(r.Body).Decode(&in) != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
			return
		}
		if len(in.GetBody()) > forge.MaxGitHubComment {
			ghTooLong(w, "Issue")
			return
		}
		switch in.GetState() {
		case "", "open", "closed":
		default:
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
			return
		}
		if in.Title != nil {
			is.Title = in.GetTitle()
		}
		if in.Body != nil {
			is.Body = in.GetBody()
		}
		if in.Labels != nil {
			is.Labels = *in.Labels
		}
		if s := in.GetState(); s != "" && s != is.State {
			is.State = s
			if s == "closed" {
				is.ClosedAt = e.now()
			}
		}
		is.Updated = e.now()
		writeJSON(w, http.StatusOK, e.ghIssue(repo, is))
	}))
}

func ghTooLong(w http.ResponseWriter, resource string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed",
		"errors": []map[string]string{{"resource": resource, "code": "custom", "field": "body", "message": fmt.Sprintf("body is too long (maximum is %d characters)", forge.MaxGitHubComment)}}})
}

func (e *Emulator) ghIssue(r *Repo, is *Issue) *gh.Issue {
	labels := []*gh.Label{}
	for _, l := range is.Labels {
		labels = append(labels, &gh.Label{Name: gh.String(l), Color: gh.String("ededed"), Default: gh.Bool(false)})
	}
	out := &gh.Issue{ID: gh.Int64(is.ID), NodeID: gh.String(fmt.Sprintf("I_emu%d", is.ID)), Number: gh.Int(is.Number), State: gh.String(is.State),
		Title: gh.String(is.Title), Body: gh.String(is.Body), User: e.ghUser(is.Author), Labels: labels, Assignees: []*gh.User{},
		Comments: gh.Int(len(is.Comments)), CreatedAt: &gh.Timestamp{Time: is.Created}, UpdatedAt: &gh.Timestamp{Time: is.Updated},
		Locked: gh.Bool(false), AuthorAssociation: gh.String("NONE"),
		HTMLURL:       gh.String(fmt.Sprintf("%s/%s/issues/%d", e.URL(), r.FullName, is.Number)),
		URL:           gh.String(fmt.Sprintf("%s/api/v3/repos/%s/issues/%d", e.URL(), r.FullName, is.Number)),
		CommentsURL:   gh.String(fmt.Sprintf("%s/api/v3/repos/%s/issues/%d/comments", e.URL(), r.FullName, is.Number)),
		RepositoryURL: gh.String(fmt.Sprintf("%s/api/v3/repos/%s", e.URL(), r.FullName))}
	if is.State == "closed" {
		out.ClosedAt = &gh.Timestamp{Time: is.ClosedAt}
		out.StateReason = gh.String("completed")
	}
	return out
}

func (e *Emulator) ghIssueComment(r *Repo, is *Issue, c *Comment) *gh.IssueComment {
	return &gh.IssueComment{ID: gh.Int64(c.ID), Body: gh.String(c.Body), User: e.ghUser(c.Author),
		CreatedAt: &gh.Timestamp{Time: c.Created}, UpdatedAt: &gh.Timestamp{Time: c.Updated}, AuthorAssociation: gh.String("NONE"),
		HTMLURL:  gh.String(fmt.Sprintf("%s/%s/issues/%d#issuecomment-%d", e.URL(), r.FullName, is.Number, c.ID)),
		IssueURL: gh.String(fmt.Sprintf("%s/api/v3/repos/%s/issues/%d", e.URL(), r.FullName, is.Number)),
		URL:      gh.String(fmt.Sprintf("%s/api/v3/repos/%s/issues/comments/%d", e.URL(), r.FullName, c.ID))}
}

// gitlabIssues serves a project's issues: GET and POST issues, GET and PUT issues/:iid
// (title, description, labels, state_event close or reopen), GET and POST issues/:iid/notes.
func (e *Emulator) gitlabIssues(w http.ResponseWriter, r *http.Request, repo *Repo, rest []string) {
	var is *Issue
	if len(rest) >= 2 {
		n, _ := strconv.Atoi(rest[1])
		if is = repo.Issues[n]; is == nil {
			glError(w, http.StatusNotFound, "404 Not found")
			return
		}
	}
	switch {
	case len(rest) == 1 && r.Method == http.MethodGet:
		q := r.URL.Query()
		state := map[string]string{"opened": "open", "closed": "closed"}[q.Get("state")]
		var out []map[string]any
		for _, x := range sortedIssues(repo, q.Get("sort") != "asc") {
			if (state == "" || x.State == state) && (q.Get("author_username") == "" || q.Get("author_username") == x.Author) && hasLabels(x, q.Get("labels")) {
				out = append(out, e.glIssue(repo, x))
			}
		}
		glPaginate(w, r, out)
	case len(rest) == 1 && r.Method == http.MethodPost:
		var in struct {
			Title, Description, Labels string
		}
		if err := decodeForm(r, &in); err != nil || in.Title == "" {
			glError(w, http.StatusBadRequest, "400 Bad request - title is missing")
			return
		}
		if len(in.Description) > forge.MaxGitLabIssueDescription {
			glError(w, http.StatusBadRequest, fmt.Sprintf("Description is too long (maximum is %d characters)", forge.MaxGitLabIssueDescription))
			return
		}
		writeJSON(w, http.StatusCreated, e.glIssue(repo, e.openIssue(repo, e.BotLogin, in.Title, in.Description, splitLabels(in.Labels))))
	case len(rest) == 2 && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, e.glIssue(repo, is))
	case len(rest) == 2 && r.Method == http.MethodPut:
		var in struct {
			Title, Description, Labels *string
			StateEvent                 string `json:"state_event"`
		}
		if err := decodeForm(r, &in); err != nil {
			glError(w, http.StatusBadRequest, "400 Bad request - "+err.Error())
			return
		}
		if in.Description != nil && len(*in.Description) > forge.MaxGitLabIssueDescription {
			glError(w, http.StatusBadRequest, fmt.Sprintf("Description is too long (maximum is %d characters)", forge.MaxGitLabIssueDescription))
			return
		}
		if in.Title != nil {
			is.Title = *in.Title
		}
		if in.Description != nil {
			is.Body = *in.Description
		}
		if in.Labels != nil {
			is.Labels = splitLabels(*in.Labels)
		}
		switch in.StateEvent {
		case "close":
			if is.State != "closed" {
				is.State, is.ClosedAt = "closed", e.now()
			}
		case "reopen":
			is.State = "open"
		case "":
		default:
			glError(w, http.StatusBadRequest, "400 Bad request - state_event does not have a valid value")
			return
		}
		is.Updated = e.now()
		writeJSON(w, http.StatusOK, e.glIssue(repo, is))
	case len(rest) == 3 && rest[2] == "notes" && r.Method == http.MethodGet:
		var out []map[string]any
		for _, c := range is.Comments {
			out = append(out, e.glIssueNote(repo, is, c))
		}
		glPaginate(w, r, out)
	case len(rest) == 3 && rest[2] == "notes" && r.Method == http.MethodPost:
		var in struct{ Body string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Body == "" {
			glError(w, http.StatusBadRequest, "400 Bad request - body is missing")
			return
		}
		if len(in.Body) > forge.MaxGitLabNote {
			glError(w, http.StatusBadRequest, fmt.Sprintf("Note {:note=>[\"is too long (maximum is %d characters)\"]}", forge.MaxGitLabNote))
			return
		}
		c := &Comment{ID: e.id(), Author: e.BotLogin, Body: in.Body, Created: e.now(), Updated: e.now()}
		is.Comments = append(is.Comments, c)
		writeJSON(w, http.StatusCreated, e.glIssueNote(repo, is, c))
	case len(rest) == 5 && rest[2] == "notes" && rest[4] == "award_emoji" && r.Method == http.MethodPost:
		c := findIssueComment(repo, rest[3])
		if c == nil || !contains(issueCommentIDs(is), rest[3]) {
			glError(w, http.StatusNotFound, "404 Note Not Found")
			return
		}
		var in struct{ Name string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		c.Reactions = append(c.Reactions, in.Name)
		writeJSON(w, http.StatusCreated, map[string]any{"id": e.id(), "name": in.Name, "user": e.glUser(e.BotLogin, e.userID(e.BotLogin)),
			"awardable_id": c.ID, "awardable_type": "Note"})
	default:
		glError(w, http.StatusNotFound, "404 Not Found")
	}
}

// findIssueComment finds a comment on one of a repository's issues by its id.
func findIssueComment(repo *Repo, id string) *Comment {
	n, _ := strconv.ParseInt(id, 10, 64)
	for _, is := range repo.Issues {
		for _, c := range is.Comments {
			if c.ID == n {
				return c
			}
		}
	}
	return nil
}

func issueCommentIDs(is *Issue) []string {
	var out []string
	for _, c := range is.Comments {
		out = append(out, strconv.FormatInt(c.ID, 10))
	}
	return out
}

// AddIssueComment adds a comment by a user (not the bot) to an issue and returns it.
func (e *Emulator) AddIssueComment(repo string, number int, author, body string) *Comment {
	e.mu.Lock()
	defer e.mu.Unlock()
	is := e.repos[repo].Issues[number]
	c := &Comment{ID: e.id(), Author: author, Body: body, Created: e.now(), Updated: e.now()}
	is.Comments = append(is.Comments, c)
	e.userID(author)
	return c
}

// GitHubIssueCommentEvent builds an issue_comment payload for a comment on an issue (no
// pull_request field; the issue's body as GitHub sends it).
func (e *Emulator) GitHubIssueCommentEvent(repo string, number int, c *Comment) *gh.IssueCommentEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(repo)
	is := r.Issues[number]
	return &gh.IssueCommentEvent{Action: gh.String("created"), Issue: e.ghIssue(r, is), Comment: e.ghIssueComment(r, is, c), Repo: e.ghRepo(r),
		Sender: e.ghUser(c.Author), Installation: &gh.Installation{ID: gh.Int64(InstallationID)}}
}

// GitLabIssueNoteEvent builds a "Note Hook" payload for a note on an issue, in the documented
// shape: object_attributes with noteable_type Issue, and the issue with its description.
func (e *Emulator) GitLabIssueNoteEvent(repo string, number int, c *Comment) map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(repo)
	is := r.Issues[number]
	note := e.glIssueNote(r, is, c)
	note["note"] = c.Body
	note["description"] = c.Body
	note["author_id"] = e.userID(c.Author)
	note["url"] = fmt.Sprintf("%s/%s/-/issues/%d#note_%d", e.URL(), r.FullName, number, c.ID)
	note["action"] = "create"
	issue := e.glIssue(r, is)
	issue["author_id"] = e.userID(is.Author)
	issue["url"] = issue["web_url"]
	delete(issue, "author")
	labels := []map[string]any{} // the hook's labels are objects, the REST API's names
	for _, l := range is.Labels {
		labels = append(labels, map[string]any{"id": e.id(), "title": l, "color": "#ededed", "project_id": r.ID, "template": false,
			"description": nil, "type": "ProjectLabel", "group_id": nil})
	}
	issue["labels"] = labels
	project := e.glProjectHook(r)
	return map[string]any{"object_kind": "note", "event_type": "note", "user": e.glUser(c.Author, e.userID(c.Author)), "project_id": r.ID,
		"project": project, "object_attributes": note, "issue": issue,
		"repository": map[string]any{"name": project["name"], "url": project["git_ssh_url"], "description": "", "homepage": project["web_url"]}}
}

func splitLabels(s string) []string {
	var out []string
	for _, l := range strings.Split(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (e *Emulator) glIssue(repo *Repo, is *Issue) map[string]any {
	state := "opened"
	var closedAt any
	if is.State == "closed" {
		state, closedAt = "closed", is.ClosedAt.UTC().Format(time.RFC3339Nano)
	}
	labels := is.Labels
	if labels == nil {
		labels = []string{}
	}
	return map[string]any{"id": is.ID, "iid": is.Number, "project_id": repo.ID, "title": is.Title, "description": is.Body, "state": state,
		"created_at": is.Created.UTC().Format(time.RFC3339Nano), "updated_at": is.Updated.UTC().Format(time.RFC3339Nano), "closed_at": closedAt,
		"labels": labels, "author": e.glUser(is.Author, e.userID(is.Author)), "assignees": []any{}, "type": "ISSUE", "issue_type": "issue",
		"user_notes_count": len(is.Comments), "confidential": false, "discussion_locked": nil,
		"web_url":    fmt.Sprintf("%s/%s/-/issues/%d", e.URL(), repo.FullName, is.Number),
		"references": map[string]string{"short": fmt.Sprintf("#%d", is.Number), "full": fmt.Sprintf("%s#%d", repo.FullName, is.Number)}}
}

func (e *Emulator) glIssueNote(repo *Repo, is *Issue, c *Comment) map[string]any {
	return map[string]any{"id": c.ID, "type": nil, "body": c.Body, "attachment": nil, "author": e.glUser(c.Author, e.userID(c.Author)),
		"created_at": c.Created.UTC().Format(time.RFC3339Nano), "updated_at": c.Updated.UTC().Format(time.RFC3339Nano),
		"system": false, "noteable_id": is.ID, "noteable_type": "Issue", "project_id": repo.ID, "noteable_iid": is.Number,
		"resolvable": false, "confidential": false, "internal": false}
}
