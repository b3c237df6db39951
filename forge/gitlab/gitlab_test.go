package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/kubeplan/kubeplan/archive"
	"github.com/kubeplan/kubeplan/forge"
	glforge "github.com/kubeplan/kubeplan/forge/gitlab"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
)

const repo = "acme/infra/platform" // a nested group, URL-encoded by the client

func TestGitLabClientAgainstTheEmulator(t *testing.T) {
	emu := forgeemu.New("tok", "kubeplan-bot")
	defer emu.Close()
	base := emu.CreateRepo(repo, map[string]string{"README.md": "hi"})
	changes := map[string]string{"README.md": ""}
	for i := 0; i < 130; i++ {
		changes[fmt.Sprintf("apps/f%03d.yaml", i)] = "x: 1\n"
	}
	n := emu.OpenPR(repo, "alice", "many files", base, changes)
	ctx := context.Background()
	c, err := glforge.New(glforge.Config{BaseURL: emu.GitLabAPI(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	mr, err := c.PullRequest(ctx, repo, n)
	if err != nil || mr.Author != "alice" || mr.HeadSHA == "" || mr.BaseSHA != base || mr.Mergeable == nil || !*mr.Mergeable {
		t.Fatalf("%+v %v", mr, err)
	}
	files, err := c.ChangedFiles(ctx, repo, n)
	if err != nil || len(files) != 131 {
		t.Fatalf("%d files over pages, want 131: %v", len(files), err)
	}
	sort.Strings(files)
	body, err := c.Archive(ctx, repo, mr.HeadSHA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Extract(body, t.TempDir(), archive.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateComment(ctx, repo, n, "plan")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateComment(ctx, repo, n, id, "new plan"); err != nil {
		t.Fatal(err)
	}
	if err := c.React(ctx, repo, n, id, "eyes"); err != nil {
		t.Fatal(err)
	}
	notes, err := c.Comments(ctx, repo, n)
	if err != nil || len(notes) != 1 || notes[0].Body != "new plan" || notes[0].Author != "kubeplan-bot" {
		t.Fatalf("%+v %v", notes, err)
	}
	if err := c.DeleteComment(ctx, repo, n, id); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteComment(ctx, repo, n, id); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	for _, st := range []forge.State{forge.Pending, forge.Failure, forge.Success} {
		if err := c.SetStatus(ctx, repo, mr.HeadSHA, forge.Status{Context: "kubeplan/plan", State: st, Description: string(st)}); err != nil {
			t.Fatal(err)
		}
	}
	if st, ok := emu.PRState(repo, n).LatestStatus(mr.HeadSHA, "kubeplan/plan"); !ok || st.State != forge.Success {
		t.Fatalf("status %+v", st)
	}
	emu.SetPermission(repo, "carol", forge.PermMaintain)
	emu.SetPermission(repo, "dave", forge.PermTriage)
	for user, want := range map[string]forge.Permission{"carol": forge.PermMaintain, "dave": forge.PermTriage, "alice": forge.PermNone, "nobody": forge.PermNone} {
		if got, err := c.Permission(ctx, repo, user); err != nil || got != want {
			t.Errorf("permission of %s: %s %v, want %s", user, got, err, want)
		}
	}
	if _, err := c.PullRequest(ctx, repo, 99); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("missing MR: %v", err)
	}
	if self, err := c.Self(ctx); err != nil || self != "kubeplan-bot" {
		t.Errorf("self %q %v", self, err)
	}
	bad, _ := glforge.New(glforge.Config{BaseURL: emu.GitLabAPI(), Token: "wrong"})
	if _, err := bad.PullRequest(ctx, repo, n); err == nil {
		t.Error("a wrong token was accepted")
	}
}
