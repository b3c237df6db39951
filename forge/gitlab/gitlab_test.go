package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
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

func TestGitLabApprovalsGroupsAndMerges(t *testing.T) {
	emu := forgeemu.New("tok", "kubeplan-bot")
	defer emu.Close()
	base := emu.CreateRepo(repo, map[string]string{"README.md": "hi", "a.yaml": "a: 1\n"})
	n := emu.OpenPR(repo, "alice", "change", base, map[string]string{"a.yaml": "a: 2\n"})
	ctx := context.Background()
	c, err := glforge.New(glforge.Config{BaseURL: emu.GitLabAPI(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	emu.Approve(repo, n, "carol")
	emu.Approve(repo, n, "bob")
	emu.Approve(repo, n, "carol") // approving twice keeps one approval
	emu.Unapprove(repo, n, "bob")
	emu.Approve(repo, n, "dave")
	reviews, err := c.Reviews(ctx, repo, n)
	want := []forge.Review{{Author: "carol", Approved: true}, {Author: "dave", Approved: true}}
	if err != nil || fmt.Sprint(reviews) != fmt.Sprint(want) {
		t.Fatalf("approvals %+v %v, want %+v (GitLab does not say which commit was approved)", reviews, err, want)
	}

	emu.AddTeamMember("acme", "carol")          // inherited by acme/infra and acme/infra/sre
	emu.AddTeamMember("acme/infra/sre", "dave") // a subgroup only
	for _, m := range []struct {
		team, user string
		want       bool
	}{
		{"acme", "carol", true}, {"acme/infra", "carol", true}, {"@acme/infra/sre", "carol", true},
		{"acme/infra/sre", "dave", true}, {"acme/infra", "dave", false}, {"acme", "dave", false},
		{"acme/infra/sre", "bob", false}, {"acme/infra/sre", "nobody", false}, {"acme/missing", "carol", false}, {"other", "carol", false},
	} {
		if got, err := c.IsMember(ctx, m.team, m.user); err != nil || got != m.want {
			t.Errorf("IsMember(%s, %s) = %v %v, want %v", m.team, m.user, got, err, m.want)
		}
	}
	for _, bad := range []string{"", "acme//sre", "/acme", "acme/", "acme/../x", "acme sre"} {
		if _, err := c.IsMember(ctx, bad, "carol"); err == nil || !strings.Contains(err.Error(), "full path") {
			t.Errorf("group %q: %v, want a syntax error", bad, err)
		}
	}

	// Mergeable: what blocks only on kubeplan's own statuses or on approvals is mergeable.
	cases := []struct {
		detailed string
		draft    bool
		set      *bool
		want     string
	}{
		{"", false, forgeemu.Bool(true), "true"}, {"", false, nil, "unknown"}, {"", false, forgeemu.Bool(false), "false"},
		{"", true, forgeemu.Bool(true), "false"},
		{"ci_still_running", false, nil, "true"}, {"ci_must_pass", false, nil, "true"}, {"not_approved", false, nil, "true"},
		{"unchecked", false, nil, "unknown"}, {"preparing", false, nil, "unknown"},
		{"need_rebase", false, nil, "false"}, {"broken_status", false, nil, "false"}, {"discussions_not_resolved", false, nil, "false"},
		{"something_new", false, nil, "false"},
	}
	for _, tc := range cases {
		emu.SetMergeable(repo, n, tc.set)
		emu.SetDetailedMergeStatus(repo, n, tc.detailed)
		emu.SetDraft(repo, n, tc.draft)
		mr, err := c.PullRequest(ctx, repo, n)
		if err != nil || show(mr.Mergeable) != tc.want {
			t.Errorf("%+v: mergeable %s %v, want %s", tc, show(mr.Mergeable), err, tc.want)
		}
	}
	emu.SetDetailedMergeStatus(repo, n, "")
	emu.SetDraft(repo, n, false)

	head := emu.PRState(repo, n).HeadSHA
	sha := emu.MergePR(repo, n, "alice")
	mr, err := c.PullRequest(ctx, repo, n)
	if err != nil || !mr.Merged || !mr.Closed || mr.MergeCommitSHA != sha || sha == head || emu.DefaultHead(repo) != sha || show(mr.Mergeable) != "false" || mr.MergedBy != "alice" {
		t.Fatalf("merged: %+v %v (merge %s)", mr, err, sha)
	}
	// Links back to the forge, as the history keeps them.
	if want := fmt.Sprintf("%s/%s/-/merge_requests/%d", emu.URL(), repo, n); mr.URL != want || mr.CommitURLPrefix != emu.URL()+"/"+repo+"/-/commit/" {
		t.Errorf("links: %q %q, want %q and the project's /-/commit/", mr.URL, mr.CommitURLPrefix, want)
	}
	if err := c.SetStatus(ctx, repo, sha, forge.Status{Context: "kubeplan/apply", State: forge.Success}); err != nil {
		t.Fatal(err)
	}
	other := emu.OpenPR(repo, "alice", "other", sha, map[string]string{"b.yaml": "b: 1\n"})
	emu.ClosePR(repo, other)
	if mr, err := c.PullRequest(ctx, repo, other); err != nil || !mr.Closed || mr.Merged || mr.MergeCommitSHA != "" {
		t.Fatalf("closed: %+v %v", mr, err)
	}
}

func show(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}
