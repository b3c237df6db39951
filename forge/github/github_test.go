package github_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/archive"
	"github.com/kubeplan/kubeplan/forge"
	ghforge "github.com/kubeplan/kubeplan/forge/github"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
)

const repo = "acme/platform"

// setup makes a repository with a pull request changing 150 files.
func setup(t *testing.T) (*forgeemu.Emulator, int) {
	t.Helper()
	emu := forgeemu.New("tok", "kubeplan[bot]")
	t.Cleanup(emu.Close)
	base := emu.CreateRepo(repo, map[string]string{"README.md": "hi", "apps/a.yaml": "a: 1\n"})
	changes := map[string]string{"README.md": ""}
	for i := 0; i < 150; i++ {
		changes[fmt.Sprintf("apps/f%03d.yaml", i)] = "x: 1\n"
	}
	return emu, emu.OpenPR(repo, "alice", "many files", base, changes)
}

func TestGitHubClientAgainstTheEmulator(t *testing.T) {
	emu, n := setup(t)
	ctx := context.Background()
	c, err := ghforge.New(ghforge.Config{BaseURL: emu.GitHubAPI(), Token: "tok"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := c.PullRequest(ctx, repo, n)
	if err != nil || pr.Author != "alice" || pr.HeadSHA == "" || pr.BaseRef != "main" || pr.Closed {
		t.Fatalf("%+v %v", pr, err)
	}
	files, err := c.ChangedFiles(ctx, repo, n)
	if err != nil || len(files) != 151 {
		t.Fatalf("%d files over pages, want 151: %v", len(files), err)
	}
	sort.Strings(files)
	if files[0] != "README.md" {
		t.Errorf("deleted file missing: %v", files[:2])
	}

	body, err := c.Archive(ctx, repo, pr.HeadSHA)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := archive.Extract(body, dir, archive.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	body.Close()

	for i := 0; i < 120; i++ {
		emu.AddComment(repo, n, "bob", fmt.Sprintf("comment %d", i))
	}
	id, err := c.CreateComment(ctx, repo, n, "<!-- kubeplan:plan part=1/1 -->\nplan")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateComment(ctx, repo, n, id, "<!-- kubeplan:plan part=1/1 -->\nnew plan"); err != nil {
		t.Fatal(err)
	}
	if err := c.React(ctx, repo, n, id, "eyes"); err != nil {
		t.Fatal(err)
	}
	all, err := c.Comments(ctx, repo, n)
	if err != nil || len(all) != 121 || all[120].Body != "<!-- kubeplan:plan part=1/1 -->\nnew plan" || all[120].Author != "kubeplan[bot]" {
		t.Fatalf("%d comments, last %+v, %v", len(all), all[len(all)-1], err)
	}
	if err := c.DeleteComment(ctx, repo, n, id); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteComment(ctx, repo, n, id); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}

	if err := c.SetStatus(ctx, repo, pr.HeadSHA, forge.Status{Context: "kubeplan/plan", State: forge.Success, Description: "ok"}); err != nil {
		t.Fatal(err)
	}
	if st, ok := emu.PRState(repo, n).LatestStatus(pr.HeadSHA, "kubeplan/plan"); !ok || st.State != forge.Success {
		t.Fatalf("status %+v", st)
	}
	emu.SetPermission(repo, "carol", forge.PermAdmin)
	emu.SetPermission(repo, "dave", forge.PermRead)
	emu.SetPermission(repo, "mia", forge.PermMaintain) // GitHub folds maintain into write; role_name keeps it
	emu.SetPermission(repo, "tom", forge.PermTriage)
	for user, want := range map[string]forge.Permission{"carol": forge.PermAdmin, "dave": forge.PermRead, "mia": forge.PermMaintain, "tom": forge.PermTriage, "eve": forge.PermNone} {
		if got, err := c.Permission(ctx, repo, user); err != nil || got != want {
			t.Errorf("permission of %s: %s %v, want %s", user, got, err, want)
		}
	}
	if _, err := c.PullRequest(ctx, repo, 99); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("missing PR: %v", err)
	}
	if self, err := c.Self(ctx); err != nil || self != "kubeplan[bot]" {
		t.Errorf("self %q %v", self, err)
	}
}

// Unknown endpoints answer GitHub's own 404, so a wrong call fails loudly in go-github.
func TestEmulatorAnswersUnknownEndpointsWithGitHubs404(t *testing.T) {
	emu, _ := setup(t)
	req, _ := http.NewRequest(http.MethodGet, emu.GitHubAPI()+"repos/acme/platform/deployments", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"message":"Not Found"`) || !strings.Contains(string(b), "documentation_url") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestGitHubAppInstallationTokens(t *testing.T) {
	emu, n := setup(t)
	key := emu.EnableGitHubApp(4242)
	ctx := context.Background()
	c, err := ghforge.New(ghforge.Config{BaseURL: emu.GitHubAPI(), AppID: 4242, PrivateKey: key}, forgeemu.InstallationID)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.PullRequest(ctx, repo, n); err != nil {
			t.Fatal(err)
		}
	}
	if self, err := c.Self(ctx); err != nil || self != "kubeplan[bot]" {
		t.Errorf("an App comments as <slug>[bot]: %q %v", self, err)
	}
	if got := emu.TokensMinted(forgeemu.InstallationID); got != 1 {
		t.Fatalf("%d installation tokens minted for 3 calls, want 1 (cached until near expiry)", got)
	}
	// The token request's body is an object, as GitHub's REST description wants (ghinstallation
	// alone sends null, which the emulator, like a strict GitHub, refuses with 422).
	if got := emu.TokenRequestBodies(); len(got) != 1 || strings.TrimSpace(got[0]) != "{}" {
		t.Fatalf("token requests sent %q, want one {}", got)
	}
	emu.EnableGitHubApp(4242) // the app's key is rotated: the old one no longer signs
	stale, err := ghforge.New(ghforge.Config{BaseURL: emu.GitHubAPI(), AppID: 4242, PrivateKey: key}, forgeemu.InstallationID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stale.PullRequest(ctx, repo, n); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a JWT signed with the old key: %v", err)
	}
	if _, err := ghforge.New(ghforge.Config{BaseURL: emu.GitHubAPI()}, 0); err == nil {
		t.Fatal("a client without credentials was made")
	}
}

func TestGitHubReviewsTeamsAndMerges(t *testing.T) {
	emu, n := setup(t)
	ctx := context.Background()
	c, err := ghforge.New(ghforge.Config{BaseURL: emu.GitHubAPI(), Token: "tok"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := emu.PRState(repo, n).HeadSHA
	stale := emu.AddReview(repo, n, "bob", forgeemu.ReviewApproved)
	emu.AddReview(repo, n, "carol", forgeemu.ReviewChangesRequested)
	emu.AddReview(repo, n, "dave", forgeemu.ReviewCommented)
	second := emu.Push(repo, n, map[string]string{"apps/new.yaml": "n: 1\n"})
	emu.DismissReview(repo, n, stale.ID)
	emu.AddReview(repo, n, "bob", forgeemu.ReviewApproved)
	reviews, err := c.Reviews(ctx, repo, n)
	if err != nil {
		t.Fatal(err)
	}
	want := []forge.Review{
		{Author: "bob", Dismissed: true, CommitSHA: first},
		{Author: "carol", ChangesRequested: true, CommitSHA: first},
		{Author: "dave", CommitSHA: first},
		{Author: "bob", Approved: true, CommitSHA: second},
	}
	if fmt.Sprint(reviews) != fmt.Sprint(want) {
		t.Fatalf("reviews\n%+v\nwant (oldest first)\n%+v", reviews, want)
	}

	emu.AddTeamMember("acme/sre", "carol")
	for _, m := range []struct {
		team, user string
		want       bool
	}{{"acme/sre", "carol", true}, {"@acme/sre", "carol", true}, {"acme/sre", "bob", false}, {"acme/nobody", "carol", false}, {"other/sre", "carol", false}} {
		if got, err := c.IsMember(ctx, m.team, m.user); err != nil || got != m.want {
			t.Errorf("IsMember(%s, %s) = %v %v, want %v", m.team, m.user, got, err, m.want)
		}
	}
	for _, bad := range []string{"sre", "acme/sre/x", "/sre", "acme/", "", "../sre", "acme/.."} {
		if _, err := c.IsMember(ctx, bad, "carol"); err == nil || !strings.Contains(err.Error(), "org/team-slug") {
			t.Errorf("team %q: %v, want a syntax error", bad, err)
		}
	}
	emu.FailRequests("GET", "/teams/", 1, http.StatusForbidden)
	if _, err := c.IsMember(ctx, "acme/sre", "carol"); err == nil {
		t.Error("a failing forge answered a membership")
	}

	pr, err := c.PullRequest(ctx, repo, n)
	if err != nil || pr.Mergeable == nil || !*pr.Mergeable || pr.MergeCommitSHA != "" || pr.Merged || pr.Closed {
		t.Fatalf("open: %+v %v (the test merge commit is not a merge commit)", pr, err)
	}
	for _, m := range []*bool{nil, forgeemu.Bool(false), forgeemu.Bool(true)} {
		emu.SetMergeable(repo, n, m)
		pr, err := c.PullRequest(ctx, repo, n)
		if err != nil || show(pr.Mergeable) != show(m) {
			t.Fatalf("mergeable %s: got %s %v", show(m), show(pr.Mergeable), err)
		}
	}

	// A second pull request from the old base merges after the first: its merge keeps both.
	other := emu.OpenPR(repo, "erin", "other", emu.PRState(repo, n).BaseSHA, map[string]string{"apps/other.yaml": "o: 1\n"})
	sha := emu.MergePR(repo, n, "alice")
	if emu.DefaultHead(repo) != sha || sha == second {
		t.Fatalf("default branch %s, merge %s, head %s", emu.DefaultHead(repo), sha, second)
	}
	pr, err = c.PullRequest(ctx, repo, n)
	if err != nil || !pr.Merged || !pr.Closed || pr.MergeCommitSHA != sha || pr.Mergeable != nil || pr.MergedBy != "alice" || pr.MergedByBot {
		t.Fatalf("merged: %+v %v", pr, err)
	}
	// Links back to the forge, as the history keeps them.
	if want := fmt.Sprintf("%s/%s/pull/%d", emu.URL(), repo, n); pr.URL != want || pr.CommitURLPrefix != emu.URL()+"/"+repo+"/commit/" {
		t.Errorf("links: %q %q, want %q and the repository's /commit/", pr.URL, pr.CommitURLPrefix, want)
	}
	if err := c.SetStatus(ctx, repo, sha, forge.Status{Context: "kubeplan/apply", State: forge.Success}); err != nil {
		t.Fatal(err)
	}
	if _, ok := emu.PRState(repo, n).LatestStatus(sha, "kubeplan/apply"); !ok {
		t.Error("status on the merge commit not recorded")
	}
	sha2 := emu.MergePR(repo, other, "alice")
	files := extract(t, c, sha2)
	if files["apps/other.yaml"] != "o: 1\n" || files["apps/new.yaml"] != "n: 1\n" || files["apps/f000.yaml"] != "x: 1\n" {
		t.Errorf("second merge lost changes: %d files", len(files))
	}
	if _, ok := files["README.md"]; ok {
		t.Error("the first pull request deleted README.md; the second merge brought it back")
	}

	third := emu.OpenPR(repo, "erin", "closed", sha2, map[string]string{"x.yaml": "x: 1\n"})
	emu.ClosePR(repo, third)
	if pr, err := c.PullRequest(ctx, repo, third); err != nil || !pr.Closed || pr.Merged || pr.MergeCommitSHA != "" {
		t.Fatalf("closed: %+v %v", pr, err)
	}
}

func extract(t *testing.T, c *ghforge.Client, sha string) map[string]string {
	t.Helper()
	body, err := c.Archive(context.Background(), repo, sha)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	dir := t.TempDir()
	if _, err := archive.Extract(body, dir, archive.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func show(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}
