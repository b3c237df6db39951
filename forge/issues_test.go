package forge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/forge/forgehttp"
)

// issueClient is what the drift issue asks of a forge client.
type issueClient interface {
	FindIssue(ctx context.Context, repo, marker string) (*forge.Issue, error)
	CreateIssue(ctx context.Context, repo, title, body string, labels []string) (*forge.Issue, error)
	EditIssue(ctx context.Context, repo string, number int, title, body string) error
	CloseIssue(ctx context.Context, repo string, number int, note string) error
	MaxIssueLength() int
}

// Both clients open, find, edit and close an issue through the forges' own issue endpoints:
// found by its marker among kubeplan's open issues only (not a pull request, not a person's
// issue quoting the marker, not a closed one).
func TestIssueLifecycle(t *testing.T) {
	ctx := context.Background()
	const marker = "<!-- kubeplan:drift repo=acme/platform project=shop cluster=prod -->"
	for _, fc := range forgeCases {
		t.Run(fc.name, func(t *testing.T) {
			emu, _ := emulator(t)
			c := fc.connect(t, emu, fc.api(emu), forgehttp.Options{}).(issueClient)
			if c.MaxIssueLength() < forge.MaxGitHubComment {
				t.Fatalf("MaxIssueLength %d", c.MaxIssueLength())
			}
			// A person's issue quoting the marker is not kubeplan's.
			emu.OpenIssue(repo, "mallory", "fake", "copied "+marker)
			if is, err := c.FindIssue(ctx, repo, marker); err != nil || is != nil {
				t.Fatalf("before any: found %+v, %v", is, err)
			}
			created, err := c.CreateIssue(ctx, repo, "kubeplan: drift on prod / shop", "drift\n"+marker, []string{"kubeplan-drift"})
			if err != nil {
				t.Fatal(err)
			}
			if created.Number <= 1 || created.Closed {
				t.Fatalf("created %+v: want a number after the pull request's and the person's issue, open", created)
			}
			found, err := c.FindIssue(ctx, repo, marker)
			if err != nil || found == nil || found.Number != created.Number || found.Body != "drift\n"+marker {
				t.Fatalf("found %+v, %v; want #%d", found, err, created.Number)
			}
			if other, err := c.FindIssue(ctx, repo, "<!-- kubeplan:drift repo=acme/platform project=shop cluster=test -->"); err != nil || other != nil {
				t.Fatalf("another cluster's marker: found %+v, %v", other, err)
			}
			if err := c.EditIssue(ctx, repo, created.Number, "kubeplan: drift on prod / shop (2)", "more drift\n"+marker); err != nil {
				t.Fatal(err)
			}
			if found, _ := c.FindIssue(ctx, repo, marker); found == nil || found.Body != "more drift\n"+marker || found.Title != "kubeplan: drift on prod / shop (2)" {
				t.Fatalf("after the edit: %+v", found)
			}
			if err := c.CloseIssue(ctx, repo, created.Number, "drift is gone"); err != nil {
				t.Fatal(err)
			}
			if found, err := c.FindIssue(ctx, repo, marker); err != nil || found != nil {
				t.Fatalf("after closing: found %+v, %v", found, err)
			}
			var got []string
			for _, is := range emu.Issues(repo) {
				if is.Number == created.Number {
					if is.State != "closed" || len(is.Labels) != 1 || is.Labels[0] != "kubeplan-drift" || len(is.Comments) != 1 || is.Comments[0].Body != "drift is gone" {
						t.Fatalf("issue as stored: %+v", is)
					}
				}
				got = append(got, is.Author)
			}
			if len(got) != 2 {
				t.Fatalf("issues %v, want the person's and kubeplan's", got)
			}
			if err := c.EditIssue(ctx, repo, 999, "x", "y"); err == nil {
				t.Fatal("editing a missing issue: no error")
			}
		})
	}
}

// Both clients answer on an issue and react to a person's comment there: GitLab's issue notes
// have endpoints of their own, apart from a merge request's.
func TestIssueCommentAndReaction(t *testing.T) {
	ctx := context.Background()
	type commenter interface {
		CreateIssueComment(ctx context.Context, repo string, number int, body string) error
		ReactToIssueComment(ctx context.Context, repo string, number int, commentID int64, reaction string) error
	}
	for _, fc := range forgeCases {
		t.Run(fc.name, func(t *testing.T) {
			emu, _ := emulator(t)
			c := fc.connect(t, emu, fc.api(emu), forgehttp.Options{}).(commenter)
			n := emu.OpenIssue(repo, "kubeplan[bot]", "kubeplan: drift on prod / shop", "drift")
			asked := emu.AddIssueComment(repo, n, "bob", "/apply")
			if err := c.ReactToIssueComment(ctx, repo, n, asked.ID, "eyes"); err != nil {
				t.Fatal(err)
			}
			if err := c.CreateIssueComment(ctx, repo, n, "@bob done"); err != nil {
				t.Fatal(err)
			}
			for _, is := range emu.Issues(repo) {
				if is.Number != n {
					continue
				}
				if len(is.Comments) != 2 || len(is.Comments[0].Reactions) != 1 || is.Comments[0].Reactions[0] != "eyes" || !strings.HasPrefix(is.Comments[1].Body, "@bob done") {
					t.Fatalf("issue comments: %+v %+v", is.Comments[0], is.Comments[len(is.Comments)-1])
				}
				return
			}
			t.Fatalf("issue #%d not found", n)
		})
	}
}
