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

// GitHubCommentEvent builds an issue_comment payload for a comment on a pull request.
func (e *Emulator) GitHubCommentEvent(repo string, number int, c *Comment) *gh.IssueCommentEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(repo)
	pr := r.PRs[number]
	issue := &gh.Issue{ID: gh.Int64(pr.ID), Number: gh.Int(number), Title: gh.String(pr.Title), State: gh.String(pr.State), User: e.ghUser(pr.Author),
		HTMLURL:          gh.String(fmt.Sprintf("%s/%s/pull/%d", e.URL(), r.FullName, number)),
		PullRequestLinks: &gh.PullRequestLinks{URL: gh.String(fmt.Sprintf("%s/api/v3/repos/%s/pulls/%d", e.URL(), r.FullName, number))}}
	return &gh.IssueCommentEvent{Action: gh.String("created"), Issue: issue, Comment: e.ghComment(r, pr, c), Repo: e.ghRepo(r),
		Sender: e.ghUser(c.Author), Installation: &gh.Installation{ID: gh.Int64(InstallationID)}}
}

// SendGitHub delivers a webhook the way GitHub does: JSON body, event and delivery headers,
// HMAC signatures (SHA-256 and the legacy SHA-1).
func SendGitHub(url, secret, kind, delivery string, payload any) (*http.Response, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/kubeplan-emulator")
	req.Header.Set("X-GitHub-Event", kind)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-GitHub-Hook-ID", "4400001")
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	m256 := hmac.New(sha256.New, []byte(secret))
	m256.Write(body)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m256.Sum(nil)))
	m1 := hmac.New(sha1.New, []byte(secret))
	m1.Write(body)
	req.Header.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m1.Sum(nil)))
	return http.DefaultClient.Do(req)
}
