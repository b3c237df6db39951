package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
)

// GitHub's merge queue asks for checks of the commit it would merge: kubeplan queues work for
// the pull request the group's ref names, on the group's commit.
func TestMergeGroupChecksAreQueuedForTheQueuedPullRequest(t *testing.T) {
	srv, q := receiver(t)
	body := fixture(t, "github", "merge_group.checks_requested.json")
	if code, msg := post(t, srv.URL+"/webhooks/github", bytes.NewReader(body), githubHeaders("merge_group", "mg-1", body)); code != http.StatusAccepted {
		t.Fatalf("status %d %q, want 202", code, msg)
	}
	want := event.Event{Forge: event.GitHub, Delivery: "mg-1", Kind: event.MergeGroup, Action: event.Queued, Repo: "acme/platform", Number: 42,
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

// The emulator's merge_group payload has the shape of GitHub's (the fixture's keys, no more),
// goes through the receiver and names the queued pull request and its group's commit.
func TestEmulatorMergeGroupWebhook(t *testing.T) {
	srv, q := receiver(t)
	emu := forgeemu.New("tok", "kubeplan[bot]")
	t.Cleanup(emu.Close)
	const repo = "acme/platform"
	base := emu.CreateRepo(repo, map[string]string{"a.yaml": "a: 1\n"})
	first := emu.OpenPR(repo, "alice", "first", base, map[string]string{"a.yaml": "a: 2\n"})
	second := emu.OpenPR(repo, "bob", "second", base, map[string]string{"b.yaml": "b: 1\n"})
	g1 := emu.Enqueue(repo, first, "alice")
	g2 := emu.Enqueue(repo, second, "carol")
	if g1.BaseSHA != base || g2.BaseSHA != g1.HeadSHA || g2.HeadRef != "refs/heads/gh-readonly-queue/main/pr-2-"+g1.HeadSHA {
		t.Fatalf("groups: %+v %+v", g1, g2)
	}

	payload := emu.GitHubMergeGroupEvent(repo, second)
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	var emulated, real map[string]any
	if err := json.Unmarshal(body, &emulated); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fixture(t, "github", "merge_group.checks_requested.json"), &real); err != nil {
		t.Fatal(err)
	}
	for _, path := range [][]string{{}, {"merge_group"}, {"merge_group", "head_commit"}, {"merge_group", "head_commit", "author"}} {
		if got, want := keysAt(emulated, path), keysAt(real, path); !slices.Equal(got, want) {
			t.Errorf("keys of %v: emulator %v, GitHub %v", path, got, want)
		}
	}

	resp, err := forgeemu.SendGitHub(srv.URL+"/webhooks/github", secret, "merge_group", "mg-emu", payload)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := queued(t, q)
	if resp.StatusCode != http.StatusAccepted || len(got) != 1 {
		t.Fatalf("status %d, queued %+v", resp.StatusCode, got)
	}
	if ev := got[0]; ev.Kind != event.MergeGroup || ev.Number != second || ev.HeadSHA != g2.HeadSHA || ev.Sender != "carol" || ev.InstallationID != forgeemu.InstallationID {
		t.Errorf("event %+v", ev)
	}
}

// keysAt lists the keys of the object at path, sorted.
func keysAt(m map[string]any, path []string) []string {
	for _, k := range path {
		m, _ = m[k].(map[string]any)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
