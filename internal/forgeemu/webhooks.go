package forgeemu

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// InstallationID is the GitHub App installation the emulator's webhooks come through.
const InstallationID = 7700123

// GitHubPullRequestEvent builds a pull_request payload from the emulator's state.
func (e *Emulator) GitHubPullRequestEvent(repo string, number int, action, sender string) *gh.PullRequestEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(repo)
	pr := r.PRs[number]
	return &gh.PullRequestEvent{Action: gh.String(action), Number: gh.Int(number), PullRequest: e.ghPull(r, pr),
		Repo: e.ghRepo(r), Sender: e.ghUser(sender), Installation: &gh.Installation{ID: gh.Int64(InstallationID)}}
}

// GitHubReviewEvent builds a pull_request_review payload ("submitted" or "dismissed") for a
// review, read again from the emulator's state so a dismissed review says so. As in GitHub's
// webhooks the review's state is lower-case ("approved", "changes_requested", "commented",
// "dismissed"). The sender is the review's author.
func (e *Emulator) GitHubReviewEvent(repo string, number int, review *Review, action string) *gh.PullRequestReviewEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(repo)
	pr := r.PRs[number]
	rv := review
	for _, x := range pr.Reviews {
		if x.ID == review.ID {
			rv = x
		}
	}
	return &gh.PullRequestReviewEvent{Action: gh.String(action), Review: e.ghReview(r, pr, rv, true), PullRequest: e.ghPull(r, pr),
		Repo: e.ghRepo(r), Sender: e.ghUser(rv.Author), Installation: &gh.Installation{ID: gh.Int64(InstallationID)}}
}

// GitHubCommentEvent builds an issue_comment payload for a comment on a pull request: action
// "created", or "edited" once the comment was edited.
func (e *Emulator) GitHubCommentEvent(repo string, number int, c *Comment) *gh.IssueCommentEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(repo)
	pr := r.PRs[number]
	issue := &gh.Issue{ID: gh.Int64(pr.ID), Number: gh.Int(number), Title: gh.String(pr.Title), State: gh.String(pr.State), User: e.ghUser(pr.Author),
		HTMLURL:          gh.String(fmt.Sprintf("%s/%s/pull/%d", e.URL(), r.FullName, number)),
		PullRequestLinks: &gh.PullRequestLinks{URL: gh.String(fmt.Sprintf("%s/api/v3/repos/%s/pulls/%d", e.URL(), r.FullName, number))}}
	action := "created"
	if c.Edited {
		action = "edited"
	}
	return &gh.IssueCommentEvent{Action: gh.String(action), Issue: issue, Comment: e.ghComment(r, pr, c), Repo: e.ghRepo(r),
		Sender: e.ghUser(c.Author), Installation: &gh.Installation{ID: gh.Int64(InstallationID)}}
}

// SendGitHub delivers a webhook the way GitHub does: JSON body, event and delivery headers,
// HMAC signatures (SHA-256 and the legacy SHA-1).
func SendGitHub(url, secret, kind, delivery string, payload any) (*http.Response, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	m256 := hmac.New(sha256.New, []byte(secret))
	m256.Write(body)
	m1 := hmac.New(sha1.New, []byte(secret))
	m1.Write(body)
	return deliver(url, body, map[string]string{
		"User-Agent": "GitHub-Hookshot/kubeplan-emulator", "X-GitHub-Event": kind, "X-GitHub-Delivery": delivery,
		"X-GitHub-Hook-ID": "4400001", "X-GitHub-Hook-Installation-Target-Type": "integration",
		"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(m256.Sum(nil)), "X-Hub-Signature": "sha1=" + hex.EncodeToString(m1.Sum(nil)),
	})
}

// deliver POSTs a JSON webhook body with the forge's headers.
func deliver(url string, body []byte, headers map[string]string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return http.DefaultClient.Do(req)
}

// GitLabMergeRequestEvent builds a "Merge Request Hook" payload from the emulator's state, in
// the documented shape (user, project, object_attributes with last_commit, repository…).
func (e *Emulator) GitLabMergeRequestEvent(repo string, number int, action, sender string) map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(repo)
	mr := r.PRs[number]
	attrs := e.glMergeRequest(r, mr)
	attrs["action"] = action
	attrs["url"] = attrs["web_url"]
	attrs["last_commit"] = map[string]any{"id": mr.HeadSHA, "message": mr.Title + "\n", "title": mr.Title,
		"timestamp": e.now().UTC().Format(time.RFC3339), "url": fmt.Sprintf("%s/%s/-/commit/%s", e.URL(), r.FullName, mr.HeadSHA),
		"author": map[string]string{"name": mr.Author, "email": mr.Author + "@example.com"}}
	attrs["author_id"] = e.userID(mr.Author)
	attrs["state_id"] = map[string]int{"opened": 1, "closed": 2, "merged": 3}[glState(mr)]
	attrs["merge_user_id"] = nil
	if mr.Merged {
		attrs["merge_user_id"] = e.userID(mr.MergedBy)
	}
	// The hook carries ids, not the users and timestamps the REST API adds.
	for _, k := range []string{"author", "merge_user", "merged_by", "merged_at", "closed_by", "closed_at", "has_conflicts", "squash"} {
		delete(attrs, k)
	}
	project := e.glProjectHook(r)
	return map[string]any{"object_kind": "merge_request", "event_type": "merge_request", "user": e.glUser(sender, e.userID(sender)),
		"project": project, "object_attributes": attrs, "labels": []any{}, "changes": map[string]any{},
		"repository": map[string]any{"name": project["name"], "url": project["git_ssh_url"], "description": "", "homepage": project["web_url"]},
		"assignees":  []any{}, "reviewers": []any{}}
}

// GitLabNoteEvent builds a "Note Hook" payload for a note on a merge request; its
// object_attributes.action is "create", or "update" once the note was edited (GitLab 16.11+).
func (e *Emulator) GitLabNoteEvent(repo string, number int, c *Comment) map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(repo)
	mr := r.PRs[number]
	note := e.glNote(r, mr, c)
	note["note"] = c.Body
	note["description"] = c.Body
	note["author_id"] = e.userID(c.Author)
	note["url"] = fmt.Sprintf("%s/%s/-/merge_requests/%d#note_%d", e.URL(), r.FullName, number, c.ID)
	note["action"] = "create"
	if c.Edited {
		note["action"] = "update"
	}
	mrAttrs := e.glMergeRequest(r, mr)
	mrAttrs["last_commit"] = map[string]any{"id": mr.HeadSHA, "message": mr.Title + "\n", "title": mr.Title}
	project := e.glProjectHook(r)
	return map[string]any{"object_kind": "note", "event_type": "note", "user": e.glUser(c.Author, e.userID(c.Author)), "project_id": r.ID,
		"project": project, "object_attributes": note, "merge_request": mrAttrs,
		"repository": map[string]any{"name": project["name"], "url": project["git_ssh_url"], "description": "", "homepage": project["web_url"]}}
}

func (e *Emulator) glProjectHook(r *Repo) map[string]any {
	ns, name := r.FullName[:strings.LastIndex(r.FullName, "/")], r.FullName[strings.LastIndex(r.FullName, "/")+1:]
	web := e.URL() + "/" + r.FullName
	return map[string]any{"id": r.ID, "name": name, "description": "", "web_url": web, "avatar_url": nil,
		"git_ssh_url": "git@emulator:" + r.FullName + ".git", "git_http_url": web + ".git", "namespace": ns, "visibility_level": 0,
		"path_with_namespace": r.FullName, "default_branch": r.Default, "ci_config_path": "", "homepage": web,
		"url": "git@emulator:" + r.FullName + ".git", "ssh_url": "git@emulator:" + r.FullName + ".git", "http_url": web + ".git"}
}

// SendGitLab delivers a webhook the way GitLab (17.4 and later) does: the secret token in
// X-Gitlab-Token, the event name in X-Gitlab-Event, the delivery as the Idempotency-Key, and
// a new X-Gitlab-Event-UUID and X-Gitlab-Webhook-UUID on every request. Sending the same
// delivery again is GitLab's retry or "Resend request".
func SendGitLab(url, token, eventName, delivery string, payload any) (*http.Response, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	if delivery == "" {
		delivery = uuid()
	}
	return deliver(url, body, map[string]string{
		"User-Agent": "GitLab/18.5.0", "X-Gitlab-Event": eventName, "X-Gitlab-Token": token, "Idempotency-Key": delivery,
		"X-Gitlab-Event-UUID": uuid(), "X-Gitlab-Webhook-UUID": uuid(), "X-Gitlab-Instance": "https://gitlab.example.com",
	})
}
