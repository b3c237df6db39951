package forgeemu

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/forge"
)

// GitLab access levels.
var accessLevel = map[forge.Permission]int{forge.PermRead: 10, forge.PermTriage: 20, forge.PermWrite: 30, forge.PermMaintain: 40, forge.PermAdmin: 50}

func glError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// gitlabAPI serves the GitLab REST (v4) endpoints kubeplan uses. Project ids arrive URL-encoded
// ("acme%2Fplatform"), so routing works on the escaped path.
func (e *Emulator) gitlabAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") && r.Header.Get("Authorization") != "Bearer "+e.Token {
			e.gitlabAsUser(w, r)
			return
		}
		if r.Header.Get("PRIVATE-TOKEN") != e.Token && r.Header.Get("Authorization") != "Bearer "+e.Token {
			glError(w, http.StatusUnauthorized, "401 Unauthorized")
			return
		}
		parts := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(parts) == 1 && parts[0] == "user" && r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, e.glUser(e.BotLogin, e.userID(e.BotLogin)))
			return
		}
		if len(parts) == 1 && parts[0] == "users" && r.Method == http.MethodGet {
			name := r.URL.Query().Get("username")
			out := []map[string]any{}
			if id, ok := e.users[name]; ok {
				out = append(out, e.glUser(name, id))
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
		if len(parts) == 2 && parts[0] == "personal_access_tokens" && parts[1] == "self" && r.Method == http.MethodGet {
			scopes := e.TokenScopes
			if scopes == nil {
				scopes = []string{"api"}
			}
			writeJSON(w, http.StatusOK, map[string]any{"id": 1, "name": "kubeplan", "revoked": false, "active": true, "scopes": scopes,
				"user_id": e.userID(e.BotLogin), "created_at": e.now().UTC().Format(time.RFC3339)})
			return
		}
		if len(parts) == 2 && parts[0] == "projects" && r.Method == http.MethodGet {
			pid, _ := url.PathUnescape(parts[1])
			repo := e.repoByPathOrID(pid)
			if repo == nil || e.revoked[repo.FullName] {
				glError(w, http.StatusNotFound, "404 Project Not Found")
				return
			}
			p, ok := repo.Permissions[e.BotLogin]
			if !ok {
				p = forge.PermWrite
			}
			name := repo.FullName[strings.LastIndex(repo.FullName, "/")+1:]
			writeJSON(w, http.StatusOK, map[string]any{"id": repo.ID, "name": name, "path": name, "path_with_namespace": repo.FullName,
				"default_branch": repo.Default, "web_url": e.URL() + "/" + repo.FullName,
				"permissions": map[string]any{"project_access": map[string]any{"access_level": accessLevel[p], "notification_level": 3}, "group_access": nil}})
			return
		}
		if len(parts) >= 2 && parts[0] == "groups" && r.Method == http.MethodGet {
			e.gitlabGroup(w, r, parts[1:])
			return
		}
		if len(parts) < 3 || parts[0] != "projects" {
			glError(w, http.StatusNotFound, "404 Not Found")
			return
		}
		pid, _ := url.PathUnescape(parts[1])
		repo := e.repoByPathOrID(pid)
		if repo == nil || e.revoked[repo.FullName] {
			glError(w, http.StatusNotFound, "404 Project Not Found")
			return
		}
		e.gitlabProject(w, r, repo, parts[2:])
	})
}

func (e *Emulator) repoByPathOrID(pid string) *Repo {
	if r := e.repos[pid]; r != nil {
		return r
	}
	for _, r := range e.repos {
		if strconv.FormatInt(r.ID, 10) == pid {
			return r
		}
	}
	return nil
}

func (e *Emulator) gitlabProject(w http.ResponseWriter, r *http.Request, repo *Repo, rest []string) {
	if rest[0] == "issues" {
		e.gitlabIssues(w, r, repo, rest)
		return
	}
	route := r.Method + " " + strings.Join(rest, "/")
	var mr *PR
	if len(rest) >= 2 && rest[0] == "merge_requests" {
		n, _ := strconv.Atoi(rest[1])
		if mr = repo.PRs[n]; mr == nil {
			glError(w, http.StatusNotFound, "404 Not found")
			return
		}
		route = r.Method + " merge_requests/:iid"
		if len(rest) > 2 {
			route += "/" + strings.Join(rest[2:], "/")
		}
	}
	switch {
	case route == "GET merge_requests/:iid":
		writeJSON(w, http.StatusOK, e.glMergeRequest(repo, mr))
	case route == "GET merge_requests/:iid/diffs":
		var out []map[string]any
		for _, p := range repo.changedFiles(mr) {
			_, inBase := repo.commits[mr.BaseSHA][p]
			_, inHead := repo.commits[mr.HeadSHA][p]
			out = append(out, map[string]any{"old_path": p, "new_path": p, "a_mode": "100644", "b_mode": "100644", "diff": "",
				"new_file": !inBase, "renamed_file": false, "deleted_file": !inHead, "generated_file": false, "collapsed": false, "too_large": false})
		}
		glPaginate(w, r, out)
	case strings.HasPrefix(route, "GET repository/branches/"):
		branch, _ := url.PathUnescape(strings.Join(rest[2:], "/"))
		if branch != repo.Default { // only the default branch has a head here
			glError(w, http.StatusNotFound, "404 Branch Not Found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": branch, "default": true, "commit": map[string]any{"id": repo.head, "short_id": repo.head[:8]}})
	case route == "GET repository/archive.tar.gz":
		sha := r.URL.Query().Get("sha")
		files, ok := repo.commits[sha]
		if !ok {
			glError(w, http.StatusNotFound, "404 File Not Found")
			return
		}
		name := repo.FullName[strings.LastIndex(repo.FullName, "/")+1:]
		data, err := tarball(fmt.Sprintf("%s-%s-%s", name, sha, sha), sha, files)
		if err != nil {
			glError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(data)
	case route == "GET merge_requests/:iid/notes":
		var out []map[string]any
		for _, c := range mr.Comments {
			out = append(out, e.glNote(repo, mr, c))
		}
		glPaginate(w, r, out)
	case route == "POST merge_requests/:iid/notes":
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
		mr.Comments = append(mr.Comments, c)
		writeJSON(w, http.StatusCreated, e.glNote(repo, mr, c))
	case len(rest) >= 4 && rest[2] == "notes":
		nid, _ := strconv.ParseInt(rest[3], 10, 64)
		var note *Comment
		idx := -1
		for i, c := range mr.Comments {
			if c.ID == nid {
				note, idx = c, i
			}
		}
		if note == nil {
			glError(w, http.StatusNotFound, "404 Note Not Found")
			return
		}
		switch {
		case r.Method == http.MethodPut && len(rest) == 4:
			var in struct{ Body string }
			_ = json.NewDecoder(r.Body).Decode(&in)
			note.Body, note.Updated = in.Body, e.now()
			writeJSON(w, http.StatusOK, e.glNote(repo, mr, note))
		case r.Method == http.MethodDelete && len(rest) == 4:
			mr.Comments = append(mr.Comments[:idx], mr.Comments[idx+1:]...)
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodPost && len(rest) == 5 && rest[4] == "award_emoji":
			var in struct{ Name string }
			_ = json.NewDecoder(r.Body).Decode(&in)
			note.Reactions = append(note.Reactions, in.Name)
			writeJSON(w, http.StatusCreated, map[string]any{"id": e.id(), "name": in.Name, "user": e.glUser(e.BotLogin, e.userID(e.BotLogin)),
				"awardable_id": note.ID, "awardable_type": "Note"})
		default:
			glError(w, http.StatusNotFound, "404 Not Found")
		}
	case r.Method == http.MethodPost && len(rest) == 2 && rest[0] == "statuses":
		var in struct {
			State, Name, Context, Description, TargetURL string
		}
		if err := decodeForm(r, &in); err != nil {
			glError(w, http.StatusBadRequest, "400 Bad request - "+err.Error())
			return
		}
		sha := rest[1]
		if _, ok := repo.commits[sha]; !ok {
			glError(w, http.StatusNotFound, "404 References for commit Not Found")
			return
		}
		state := map[string]forge.State{"pending": forge.Pending, "running": forge.Pending, "success": forge.Success, "failed": forge.Failure, "canceled": forge.Error}[in.State]
		if state == "" {
			glError(w, http.StatusBadRequest, "400 Bad request - state does not have a valid value")
			return
		}
		name := in.Name
		if name == "" {
			name = in.Context
		}
		if name == "" {
			name = "default"
		}
		st := forge.Status{Context: name, State: state, Description: in.Description, TargetURL: in.TargetURL}
		for _, pr := range repo.PRs {
			if pr.HeadSHA == sha || pr.MergeCommitSHA == sha || hasStatuses(pr, sha) {
				pr.Statuses[sha] = append(pr.Statuses[sha], st)
			}
		}
		writeJSON(w, http.StatusCreated, map[string]any{"id": e.id(), "sha": sha, "ref": "", "status": in.State, "name": name,
			"description": in.Description, "target_url": in.TargetURL, "created_at": e.now().UTC().Format(time.RFC3339),
			"author": e.glUser(e.BotLogin, e.userID(e.BotLogin)), "allow_failure": false})
	case route == "GET merge_requests/:iid/approvals":
		by := []map[string]any{}
		for _, rv := range approvers(mr) {
			by = append(by, map[string]any{"user": e.glUser(rv.Author, e.userID(rv.Author))})
		}
		created := mr.Created.UTC().Format(time.RFC3339Nano)
		writeJSON(w, http.StatusOK, map[string]any{"id": mr.ID, "iid": mr.Number, "project_id": repo.ID, "title": mr.Title, "description": "",
			"state": glState(mr), "created_at": created, "updated_at": created, "merge_status": glLegacyMergeStatus(mr),
			"approved": true, "approvals_required": 0, "approvals_left": 0, "require_password_to_approve": false,
			"approved_by": by, "suggested_approvers": []any{}, "approvers": []any{}, "approver_groups": []any{},
			"user_has_approved": false, "user_can_approve": true, "approval_rules_left": []any{}, "has_approval_rules": false,
			"merge_request_approvers_available": false, "multiple_approval_rules_available": false})
	case r.Method == http.MethodGet && len(rest) == 3 && rest[0] == "members" && rest[1] == "all":
		uid, _ := strconv.ParseInt(rest[2], 10, 64)
		for name, id := range e.users {
			if id == uid {
				if level, ok := accessLevel[repo.Permissions[name]]; ok {
					writeJSON(w, http.StatusOK, map[string]any{"id": id, "username": name, "name": name, "state": "active", "access_level": level,
						"web_url": e.URL() + "/" + name})
					return
				}
			}
		}
		glError(w, http.StatusNotFound, "404 Not found")
	default:
		glError(w, http.StatusNotFound, "404 Not Found")
	}
}

// gitlabGroup serves GET /groups/:id, /groups/:id/members/:user_id and
// /groups/:id/members/all/:user_id (members of parent groups too); the id is numeric or the
// URL-encoded full path.
func (e *Emulator) gitlabGroup(w http.ResponseWriter, r *http.Request, rest []string) {
	gid, _ := url.PathUnescape(rest[0])
	path, id, ok := e.groupByPathOrID(gid)
	if !ok {
		glError(w, http.StatusNotFound, "404 Group Not Found")
		return
	}
	switch {
	case len(rest) == 1:
		name := path[strings.LastIndex(path, "/")+1:]
		var parent any
		if i := strings.LastIndex(path, "/"); i > 0 {
			parent = e.groups[path[:i]]
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "name": name, "path": name, "full_name": strings.ReplaceAll(path, "/", " / "),
			"full_path": path, "description": "", "visibility": "private", "parent_id": parent, "web_url": e.URL() + "/groups/" + path,
			"avatar_url": nil, "request_access_enabled": true, "created_at": e.now().UTC().Format(time.RFC3339Nano)})
	case (len(rest) == 3 && rest[1] == "members") || (len(rest) == 4 && rest[1] == "members" && rest[2] == "all"):
		uid, _ := strconv.ParseInt(rest[len(rest)-1], 10, 64)
		for name, id := range e.users {
			if id == uid && e.inGroup(path, name, len(rest) == 4) {
				m := e.glUser(name, id)
				m["access_level"], m["created_at"], m["expires_at"], m["membership_state"] = 30, e.now().UTC().Format(time.RFC3339Nano), nil, "active"
				writeJSON(w, http.StatusOK, m)
				return
			}
		}
		glError(w, http.StatusNotFound, "404 Not found")
	default:
		glError(w, http.StatusNotFound, "404 Not Found")
	}
}

// decodeForm reads a JSON or form-encoded body (go-gitlab sends JSON).
func decodeForm(r *http.Request, v any) error {
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(r.Body)
	if buf.Len() == 0 {
		q := map[string]string{}
		for k := range r.URL.Query() {
			q[k] = r.URL.Query().Get(k)
		}
		b, _ := json.Marshal(q)
		return json.Unmarshal(b, v)
	}
	return json.Unmarshal(buf.Bytes(), v)
}

func glPaginate(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	start, end, page, per := pageBounds(r, 20, len(items))
	w.Header().Set("X-Page", strconv.Itoa(page))
	w.Header().Set("X-Per-Page", strconv.Itoa(per))
	w.Header().Set("X-Total", strconv.Itoa(len(items)))
	w.Header().Set("X-Total-Pages", strconv.Itoa(max(1, (len(items)+per-1)/per)))
	if end < len(items) {
		w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
	} else {
		w.Header().Set("X-Next-Page", "")
	}
	page1 := items[start:end]
	if page1 == nil {
		page1 = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, page1)
}

func (e *Emulator) glUser(name string, id int64) map[string]any {
	display := name
	if n := e.userNames[name]; n != "" {
		display = n
	}
	return map[string]any{"id": id, "username": name, "name": display, "state": "active", "locked": false,
		"avatar_url": e.URL() + "/uploads/-/system/user/avatar/" + strconv.FormatInt(id, 10) + "/avatar.png", "web_url": e.URL() + "/" + name}
}

// glState is a merge request's state: opened, closed or merged.
func glState(mr *PR) string {
	switch {
	case mr.Merged:
		return "merged"
	case mr.State == "closed":
		return "closed"
	}
	return "opened"
}

// glDetailedMergeStatus is what GitLab says blocks a merge (detailed_merge_status).
func glDetailedMergeStatus(mr *PR) string {
	switch {
	case mr.State != "open":
		return "not_open"
	case mr.DetailedMergeStatus != "":
		return mr.DetailedMergeStatus
	case mr.Draft:
		return "draft_status"
	case mr.Mergeable == nil:
		return "checking"
	case !*mr.Mergeable:
		return "conflict"
	}
	return "mergeable"
}

// glLegacyMergeStatus is the deprecated merge_status, which only speaks of conflicts.
func glLegacyMergeStatus(mr *PR) string {
	switch {
	case mr.Mergeable == nil:
		return "checking"
	case !*mr.Mergeable:
		return "cannot_be_merged"
	}
	return "can_be_merged"
}

func (e *Emulator) glMergeRequest(repo *Repo, mr *PR) map[string]any {
	created := mr.Created.UTC().Format(time.RFC3339Nano)
	out := map[string]any{
		"id": mr.ID, "iid": mr.Number, "project_id": repo.ID, "title": mr.Title, "description": "", "state": glState(mr),
		"created_at": created, "updated_at": created, "target_branch": mr.BaseRef, "source_branch": mr.HeadRef,
		"source_project_id": repo.ID, "target_project_id": repo.ID, "author": e.glUser(mr.Author, e.userID(mr.Author)),
		"draft": mr.Draft, "work_in_progress": mr.Draft, "merge_status": glLegacyMergeStatus(mr), "detailed_merge_status": glDetailedMergeStatus(mr),
		"sha": mr.HeadSHA, "has_conflicts": mr.Mergeable != nil && !*mr.Mergeable, "merge_commit_sha": nil, "squash_commit_sha": nil, "squash": false, "user_notes_count": len(mr.Comments),
		"merge_user": nil, "merged_by": nil, "merged_at": nil, "closed_by": nil, "closed_at": nil,
		"web_url":   fmt.Sprintf("%s/%s/-/merge_requests/%d", e.URL(), repo.FullName, mr.Number),
		"diff_refs": map[string]string{"base_sha": mr.BaseSHA, "head_sha": mr.HeadSHA, "start_sha": mr.BaseSHA},
		"references": map[string]string{"short": fmt.Sprintf("!%d", mr.Number), "relative": fmt.Sprintf("!%d", mr.Number),
			"full": fmt.Sprintf("%s!%d", repo.FullName, mr.Number)},
		"labels": []string{}, "assignees": []any{}, "reviewers": []any{},
	}
	if mr.Merged {
		by := e.glUser(mr.MergedBy, e.userID(mr.MergedBy))
		out["merge_commit_sha"], out["merge_user"], out["merged_by"] = mr.MergeCommitSHA, by, by
		out["merged_at"] = mr.MergedAt.UTC().Format(time.RFC3339Nano)
	} else if mr.State == "closed" {
		out["closed_at"] = mr.ClosedAt.UTC().Format(time.RFC3339Nano)
	}
	return out
}

func (e *Emulator) glNote(repo *Repo, mr *PR, c *Comment) map[string]any {
	return map[string]any{"id": c.ID, "type": nil, "body": c.Body, "attachment": nil, "author": e.glUser(c.Author, e.userID(c.Author)),
		"created_at": c.Created.UTC().Format(time.RFC3339Nano), "updated_at": c.Updated.UTC().Format(time.RFC3339Nano),
		"system": false, "noteable_id": mr.ID, "noteable_type": "MergeRequest", "project_id": repo.ID, "noteable_iid": mr.Number,
		"resolvable": false, "confidential": false, "internal": false}
}

func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// gitlabAsUser serves a person's OAuth token: who they are (GET /user, scope read_user or
// read_api) and the projects they may see (GET /projects/:id, scope read_api: 404 for the
// rest, as GitLab hides private projects), with their access level. Nothing else is served to
// people's tokens here.
func (e *Emulator) gitlabAsUser(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ut, ok := e.userTokens[tok]; ok && ut.forge == "gitlab" && !e.now().Before(ut.expires) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "Token is expired. You can either do re-authorization or token refresh."})
		return
	}
	ut, ok := e.userOf("gitlab", r.Header.Get("Authorization"))
	if !ok {
		glError(w, http.StatusUnauthorized, "401 Unauthorized")
		return
	}
	insufficient := func(scopes ...string) {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "insufficient_scope",
			"error_description": "The request requires higher privileges than provided by the access token.", "scope": strings.Join(scopes, " ")})
	}
	parts := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	switch {
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "user":
		if !ut.hasScope("read_user", "read_api", "api") {
			insufficient("api", "read_api", "read_user")
			return
		}
		writeJSON(w, http.StatusOK, e.glUser(ut.login, e.userID(ut.login)))
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "projects":
		if !ut.hasScope("read_api", "api") {
			insufficient("api", "read_api")
			return
		}
		pid, _ := url.PathUnescape(parts[1])
		repo := e.repoByPathOrID(pid)
		var p forge.Permission
		var member bool
		if repo != nil {
			p, member = repo.Permissions[ut.login]
		}
		if !member {
			glError(w, http.StatusNotFound, "404 Project Not Found")
			return
		}
		name := repo.FullName[strings.LastIndex(repo.FullName, "/")+1:]
		writeJSON(w, http.StatusOK, map[string]any{"id": repo.ID, "name": name, "path": name, "path_with_namespace": repo.FullName,
			"default_branch": repo.Default, "web_url": e.URL() + "/" + repo.FullName, "visibility": "private",
			"permissions": map[string]any{"project_access": map[string]any{"access_level": accessLevel[p], "notification_level": 3}, "group_access": nil}})
	default:
		glError(w, http.StatusNotFound, "404 Not Found")
	}
}
