package webhook

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/event"
)

// GitHub's merge queue asks for checks of the commit it would merge: kubeplan queues work for
// the pull request the group's ref names, on the group's commit.
func TestMergeGroupChecksAreQueuedForTheQueuedPullRequest(t *testing.T) {
	srv, q := receiver(t)
	body := fixture(t, "github", "merge_group.checks_requested.json")
	if code, msg := post(t, srv.URL+"/webhooks/github", bytes.NewReader(body), githubHeaders("merge_group", "mg-1", body)); code != http.StatusAccepted {
		t.Fatalf("status %d %q, want 202", code, msg)
	}
	want := event.Event{Forge: event.GitHub, Delivery: "mg-1", Kind: event.MergeGroup, Action: "checks_requested", Repo: "acme/platform", Number: 42,
		HeadSHA: "5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081", Sender: "alice", InstallationID: 7700123}
	if got := queued(t, q); len(got) != 1 || got[0] != want {
		t.Fatalf("queued %+v\nwant %+v", got, want)
	}
}

// A destroyed group needs no work (its merge arrives as a pull_request event), and a group
// whose ref names no pull request cannot be reported on.
func TestMergeGroupsWithoutWorkAreIgnored(t *testing.T) {
	srv, q := receiver(t)
	checks := fixture(t, "github", "merge_group.checks_requested.json")
	for _, c := range []struct {
		name string
		body []byte
		want string
	}{
		{"destroyed", fixture(t, "github", "merge_group.destroyed.json"), "ignored: merge_group action destroyed"},
		{"not a queue ref", bytes.ReplaceAll(checks, []byte("refs/heads/gh-readonly-queue/main/pr-42-"), []byte("refs/heads/feature/pr-42-")), "names no pull request"},
		{"no number", bytes.ReplaceAll(checks, []byte("/pr-42-"), []byte("/pr--")), "names no pull request"},
	} {
		code, msg := post(t, srv.URL+"/webhooks/github", bytes.NewReader(c.body), githubHeaders("merge_group", c.name, c.body))
		if code != http.StatusOK || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %q, want 200 %q", c.name, code, msg, c.want)
		}
	}
	if got := queued(t, q); len(got) != 0 {
		t.Fatalf("queued %+v, want nothing", got)
	}
}
