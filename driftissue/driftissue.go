// Package driftissue keeps one forge issue per repository × project × cluster in step with
// drift: it opens the issue when drift appears, edits it in place as the drift changes, leaves
// it alone when the drift is the same, and closes it with a note when the drift is gone. The
// texts are package comments'; finding the issue again is by the hidden marker in its body.
package driftissue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/driftreport"
	"github.com/kubeplan/kubeplan/forge"
)

// Forge is what the notifier asks of a forge client; the clients of forge/github and
// forge/gitlab are ones.
type Forge interface {
	// FindIssue returns kubeplan's oldest open issue whose body holds marker, or nil.
	FindIssue(ctx context.Context, repo, marker string) (*forge.Issue, error)
	CreateIssue(ctx context.Context, repo, title, body string, labels []string) (*forge.Issue, error)
	EditIssue(ctx context.Context, repo string, number int, title, body string) error
	// CloseIssue comments note on the issue, then closes it.
	CloseIssue(ctx context.Context, repo string, number int, note string) error
	MaxIssueLength() int
}

// Notifier keeps drift issues on one forge client (for a GitHub App, the client of the
// repository's installation: make a Notifier per client, it holds nothing else).
type Notifier struct {
	Forge Forge
	// Now stamps the closing note; nil is time.Now.
	Now func() time.Time
}

// Update brings the issue of repo × project × cluster in step with report: a report with
// drift (report.Drifted) opens the issue or edits it when its text would change; a report
// without drift, or nil, closes an open issue with a note ("drift is gone as of …, checked at
// report.Commit"). Seeing the same report again writes nothing to the forge: the rendered
// title and body are compared with the issue's. It returns the issue it opened, edited,
// left alone or closed; nil when there is none.
func (n *Notifier) Update(ctx context.Context, repo, project, cluster string, report *driftreport.Report) (*forge.Issue, error) {
	marker := comments.DriftIssueMarker(repo, project, cluster)
	is, err := n.Forge.FindIssue(ctx, repo, marker)
	if err != nil {
		return nil, fmt.Errorf("drift issue of %s on %s in %s: %w", project, cluster, repo, err)
	}
	if report == nil || !report.Drifted() {
		if is == nil {
			return nil, nil
		}
		commit := ""
		if report != nil {
			commit = report.Commit
		}
		now := time.Now
		if n.Now != nil {
			now = n.Now
		}
		if err := n.Forge.CloseIssue(ctx, repo, is.Number, comments.DriftGone(now(), commit)); err != nil {
			return is, fmt.Errorf("close the drift issue of %s on %s (#%d in %s): %w", project, cluster, is.Number, repo, err)
		}
		return is, nil
	}
	// The marker names what the caller said, whatever the report names.
	r := *report
	r.Project, r.Cluster = project, cluster
	title := comments.DriftIssueTitle(project, cluster)
	body := comments.DriftIssueBody(comments.DriftIssue{Repo: repo, Report: &r, Limit: n.Forge.MaxIssueLength()})
	switch {
	case is == nil:
		created, err := n.Forge.CreateIssue(ctx, repo, title, body, []string{comments.DriftIssueLabel})
		if err != nil {
			return nil, fmt.Errorf("open the drift issue of %s on %s in %s: %w", project, cluster, repo, err)
		}
		return created, nil
	case is.Title != title || normalize(is.Body) != normalize(body):
		if err := n.Forge.EditIssue(ctx, repo, is.Number, title, body); err != nil {
			return is, fmt.Errorf("edit the drift issue of %s on %s (#%d in %s): %w", project, cluster, is.Number, repo, err)
		}
	}
	return is, nil
}

// normalize reads a body as the forge may give it back: line ends as \r\n (an edit in the
// browser), trailing white space trimmed.
func normalize(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
}
