package webhook

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
)

// The emulator's review, approval and merge payloads go through the receiver as GitHub's and
// GitLab's would: parsed by the same libraries, reduced to the same events.
func TestEmulatorReviewAndMergeWebhooks(t *testing.T) {
	srv, q := receiver(t)
	emu := forgeemu.New("tok", "kubeplan[bot]")
	t.Cleanup(emu.Close)
	deliveries := 0
	// send delivers one webhook and returns the one event it queued.
	send := func(forge string, kind string, payload any) event.Event {
		t.Helper()
		deliveries++
		delivery := fmt.Sprintf("d-%d", deliveries)
		var resp *http.Response
		var err error
		if forge == "github" {
			resp, err = forgeemu.SendGitHub(srv.URL+"/webhooks/github", secret, kind, delivery, payload)
		} else {
			resp, err = forgeemu.SendGitLab(srv.URL+"/webhooks/gitlab", secret, kind, delivery, payload)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s %s: %d %s", forge, kind, resp.StatusCode, b)
		}
		got := queued(t, q)
		if len(got) != 1 {
			t.Fatalf("%s %s queued %+v", forge, kind, got)
		}
		return got[0]
	}

	const ghRepo = "acme/platform"
	base := emu.CreateRepo(ghRepo, map[string]string{"a.yaml": "a: 1\n"})
	n := emu.OpenPR(ghRepo, "alice", "change", base, map[string]string{"a.yaml": "a: 2\n"})
	first := emu.PRState(ghRepo, n).HeadSHA
	approval := emu.AddReview(ghRepo, n, "bob", forgeemu.ReviewApproved)
	payload := emu.GitHubReviewEvent(ghRepo, n, approval, "submitted")
	if payload.GetReview().GetState() != "approved" {
		t.Errorf("webhook review state %q, want lower-case approved", payload.GetReview().GetState())
	}
	ev := send("github", "pull_request_review", payload)
	if ev.Kind != event.Review || ev.Action != event.Submitted || ev.HeadSHA != first || ev.Sender != "bob" || ev.InstallationID != forgeemu.InstallationID {
		t.Errorf("submitted: %+v", ev)
	}
	second := emu.Push(ghRepo, n, map[string]string{"b.yaml": "b: 1\n"})
	emu.DismissReview(ghRepo, n, approval.ID)
	payload = emu.GitHubReviewEvent(ghRepo, n, approval, "dismissed")
	if payload.GetReview().GetState() != "dismissed" || payload.GetPullRequest().GetHead().GetSHA() != second {
		t.Errorf("dismissed payload: review %q, head %s", payload.GetReview().GetState(), payload.GetPullRequest().GetHead().GetSHA())
	}
	if ev := send("github", "pull_request_review", payload); ev.Action != event.Dismissed || ev.HeadSHA != first || ev.Sender != "bob" {
		t.Errorf("dismissed: %+v, want the approved head %s", ev, first)
	}
	changes := emu.AddReview(ghRepo, n, "carol", forgeemu.ReviewChangesRequested)
	if st := emu.GitHubReviewEvent(ghRepo, n, changes, "submitted").GetReview().GetState(); st != "changes_requested" {
		t.Errorf("webhook review state %q", st)
	}
	mergeSHA := emu.MergePR(ghRepo, n, "alice")
	closed := emu.GitHubPullRequestEvent(ghRepo, n, "closed", "alice")
	if closed.GetPullRequest().GetMergeCommitSHA() != mergeSHA || closed.GetPullRequest().GetMergedAt().IsZero() {
		t.Errorf("closed payload: merge_commit_sha %q merged_at %v, want %s", closed.GetPullRequest().GetMergeCommitSHA(), closed.GetPullRequest().GetMergedAt(), mergeSHA)
	}
	if ev := send("github", "pull_request", closed); ev.Kind != event.PullRequest || ev.Action != event.Merged || !ev.Merged || !ev.Closed {
		t.Errorf("merged: %+v", ev)
	}
	other := emu.OpenPR(ghRepo, "alice", "other", mergeSHA, map[string]string{"c.yaml": "c: 1\n"})
	emu.ClosePR(ghRepo, other)
	if ev := send("github", "pull_request", emu.GitHubPullRequestEvent(ghRepo, other, "closed", "alice")); ev.Action != event.Closed || ev.Merged || !ev.Closed {
		t.Errorf("closed unmerged: %+v", ev)
	}

	const glRepo = "acme/infra/platform"
	base = emu.CreateRepo(glRepo, map[string]string{"a.yaml": "a: 1\n"})
	n = emu.OpenPR(glRepo, "alice", "change", base, map[string]string{"a.yaml": "a: 2\n"})
	head := emu.PRState(glRepo, n).HeadSHA
	emu.Approve(glRepo, n, "carol")
	if ev := send("gitlab", "Merge Request Hook", emu.GitLabMergeRequestEvent(glRepo, n, "approved", "carol")); ev.Kind != event.Review || ev.Action != event.Approved || ev.HeadSHA != head || ev.Sender != "carol" || ev.Repo != glRepo {
		t.Errorf("approved: %+v", ev)
	}
	emu.Unapprove(glRepo, n, "carol")
	if ev := send("gitlab", "Merge Request Hook", emu.GitLabMergeRequestEvent(glRepo, n, "unapproved", "carol")); ev.Kind != event.Review || ev.Action != event.Unapproved || ev.Sender != "carol" {
		t.Errorf("unapproved: %+v", ev)
	}
	mergeSHA = emu.MergePR(glRepo, n, "alice")
	hook := emu.GitLabMergeRequestEvent(glRepo, n, "merge", "alice")
	attrs := hook["object_attributes"].(map[string]any)
	if attrs["state"] != "merged" || attrs["state_id"] != 3 || attrs["merge_commit_sha"] != mergeSHA {
		t.Errorf("merge hook: state %v/%v merge_commit_sha %v", attrs["state"], attrs["state_id"], attrs["merge_commit_sha"])
	}
	if ev := send("gitlab", "Merge Request Hook", hook); ev.Kind != event.PullRequest || ev.Action != event.Merged || !ev.Merged || !ev.Closed || ev.HeadSHA != head {
		t.Errorf("merge: %+v", ev)
	}
	other = emu.OpenPR(glRepo, "alice", "other", mergeSHA, map[string]string{"c.yaml": "c: 1\n"})
	emu.ClosePR(glRepo, other)
	if ev := send("gitlab", "Merge Request Hook", emu.GitLabMergeRequestEvent(glRepo, other, "close", "alice")); ev.Action != event.Closed || ev.Merged || !ev.Closed {
		t.Errorf("close: %+v", ev)
	}
}

// A comment edited into a command is not a command on either forge: the emulator's webhooks for
// an edit ("edited" on GitHub, action "update" on GitLab) are acknowledged and ignored.
func TestEditedCommentsAreNotCommands(t *testing.T) {
	srv, q := receiver(t)
	emu := forgeemu.New("tok", "kubeplan[bot]")
	t.Cleanup(emu.Close)
	const repo = "acme/platform"
	base := emu.CreateRepo(repo, map[string]string{"a.yaml": "a: 1\n"})
	n := emu.OpenPR(repo, "alice", "change", base, map[string]string{"a.yaml": "a: 2\n"})
	c := emu.AddComment(repo, n, "bob", "LGTM")
	c = emu.EditComment(repo, n, c.ID, "/apply")
	for forge, send := range map[string]func() (*http.Response, error){
		"github": func() (*http.Response, error) {
			return forgeemu.SendGitHub(srv.URL+"/webhooks/github", secret, "issue_comment", "d-gh", emu.GitHubCommentEvent(repo, n, c))
		},
		"gitlab": func() (*http.Response, error) {
			return forgeemu.SendGitLab(srv.URL+"/webhooks/gitlab", secret, "Note Hook", "d-gl", emu.GitLabNoteEvent(repo, n, c))
		},
	} {
		resp, err := send()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "ignored") {
			t.Errorf("%s: edited comment answered %d %q, want it ignored", forge, resp.StatusCode, b)
		}
	}
	if got := queued(t, q); len(got) != 0 {
		t.Fatalf("edited comments were queued as commands: %+v", got)
	}
}
