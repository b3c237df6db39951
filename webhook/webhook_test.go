package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/store"
)

const secret = "webhook-test-secret"

func fixture(t *testing.T, forge, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "webhooks", forge, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(body []byte) string { return "sha256=" + hexMAC(sha256.New, body) }

func hexMAC(h func() hash.Hash, body []byte) string {
	m := hmac.New(h, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// receiver serves both endpoints over real HTTP, queueing into a real SQLite store.
func receiver(t *testing.T) (*httptest.Server, *store.Queue) {
	t.Helper()
	q, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	mux.Handle("/webhooks/github", &GitHub{Secret: []byte(secret), Queue: q, MaxBody: 1 << 20, Log: log})
	mux.Handle("/webhooks/gitlab", &GitLab{Token: []byte(secret), Queue: q, MaxBody: 1 << 20, Log: log})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, q
}

func post(t *testing.T, url string, body io.Reader, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func githubHeaders(kind, delivery string, body []byte) map[string]string {
	return map[string]string{"Content-Type": "application/json", "X-GitHub-Event": kind, "X-GitHub-Delivery": delivery,
		"X-Hub-Signature-256": sign(body), "User-Agent": "GitHub-Hookshot/abc123"}
}

func queued(t *testing.T, q *store.Queue) []event.Event {
	t.Helper()
	var out []event.Event
	for {
		j, err := q.Claim(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if j == nil {
			return out
		}
		var ev event.Event
		if err := json.Unmarshal(j.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
		_ = q.Done(context.Background(), j.ID, nil)
	}
}

func TestGitHubEventsAreVerifiedParsedAndQueued(t *testing.T) {
	cases := []struct {
		kind, file string
		want       event.Event
	}{
		{"pull_request", "pull_request.opened.json", event.Event{Kind: event.PullRequest, Action: event.Opened, Repo: "acme/platform", Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Sender: "alice", InstallationID: 7700123}},
		{"pull_request", "pull_request.synchronize.json", event.Event{Kind: event.PullRequest, Action: event.Pushed, Repo: "acme/platform", Number: 42,
			HeadSHA: "aa2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Sender: "alice", InstallationID: 7700123}},
		{"pull_request", "pull_request.closed-merged.json", event.Event{Kind: event.PullRequest, Action: event.Merged, Repo: "acme/platform", Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Merged: true, Closed: true, Sender: "alice", InstallationID: 7700123}},
		{"issue_comment", "issue_comment.created.json", event.Event{Kind: event.Comment, Action: event.Commented, Repo: "acme/platform", Number: 42,
			Sender: "bob", CommentID: 8800001, CommentBody: "/apply -p web", InstallationID: 7700123}},
		// A command on a drift issue: the marker its body claims goes with it, to be checked.
		{"issue_comment", "issue_comment.drift-issue.json", event.Event{Kind: event.IssueComment, Action: event.Commented, Repo: "acme/platform", Number: 57,
			Sender: "bob", CommentID: 8800057, CommentBody: "/apply", IssueMarker: driftMarker, InstallationID: 7700123}},
		{"pull_request", "pull_request.closed.json", event.Event{Kind: event.PullRequest, Action: event.Closed, Repo: "acme/platform", Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Closed: true, Sender: "alice", InstallationID: 7700123}},
		{"pull_request_review", "pull_request_review.submitted.json", event.Event{Kind: event.Review, Action: event.Submitted, Repo: "acme/platform", Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Sender: "bob", InstallationID: 7700123}},
		// carol dismissed bob's approval of an older head: the event speaks of bob and that head.
		{"pull_request_review", "pull_request_review.dismissed.json", event.Event{Kind: event.Review, Action: event.Dismissed, Repo: "acme/platform", Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Sender: "bob", InstallationID: 7700123}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			srv, q := receiver(t)
			body := fixture(t, "github", c.file)
			code, _ := post(t, srv.URL+"/webhooks/github", bytes.NewReader(body), githubHeaders(c.kind, "d-"+c.file, body))
			if code != http.StatusAccepted {
				t.Fatalf("status %d, want 202", code)
			}
			got := queued(t, q)
			c.want.Forge, c.want.Delivery = event.GitHub, "d-"+c.file
			if len(got) != 1 || got[0] != c.want {
				t.Fatalf("queued %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestForgedOrUnsignedGitHubWebhooksAreRefused(t *testing.T) {
	srv, q := receiver(t)
	body := fixture(t, "github", "pull_request.opened.json")
	forged := githubHeaders("pull_request", "d-1", body)
	forged["X-Hub-Signature-256"] = "sha256=" + strings.Repeat("0", 64)
	unsigned := githubHeaders("pull_request", "d-2", body)
	delete(unsigned, "X-Hub-Signature-256")
	tampered := githubHeaders("pull_request", "d-3", body)
	// The right HMAC, but not SHA-256: go-github would accept these in X-Hub-Signature-256.
	sha1Named := githubHeaders("pull_request", "d-4", body)
	sha1Named["X-Hub-Signature-256"] = "sha1=" + hexMAC(sha1.New, body)
	sha512Named := githubHeaders("pull_request", "d-5", body)
	sha512Named["X-Hub-Signature-256"] = "sha512=" + hexMAC(sha512.New, body)
	// Only the legacy SHA-1 header, correctly signed.
	legacyOnly := githubHeaders("pull_request", "d-6", body)
	delete(legacyOnly, "X-Hub-Signature-256")
	legacyOnly["X-Hub-Signature"] = "sha1=" + hexMAC(sha1.New, body)
	for name, h := range map[string]map[string]string{"forged": forged, "unsigned": unsigned, "sha1 in the sha256 header": sha1Named,
		"sha512 in the sha256 header": sha512Named, "legacy sha1 header only": legacyOnly} {
		if code, _ := post(t, srv.URL+"/webhooks/github", bytes.NewReader(body), h); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, code)
		}
	}
	if code, _ := post(t, srv.URL+"/webhooks/github", bytes.NewReader(bytes.Replace(body, []byte(`"alice"`), []byte(`"mallory"`), 1)), tampered); code != http.StatusUnauthorized {
		t.Errorf("tampered body: status %d, want 401", code)
	}
	if got := queued(t, q); len(got) != 0 {
		t.Fatalf("refused requests queued %d events", len(got))
	}
}

// A correctly signed payload of a kind kubeplan uses but without the repository or the pull
// request (a broken proxy, a changed payload shape) is refused with a reason, not queued.
func TestSignedPayloadsWithoutAPullRequestAreRefused(t *testing.T) {
	srv, q := receiver(t)
	noRepo := bytes.Replace(fixture(t, "github", "pull_request.opened.json"), []byte(`"repository":`), []byte(`"repository_was":`), 1)
	const refused = "malformed payload: no repository or pull request"
	for _, c := range []struct {
		forge, kind string
		body        []byte
		code        int
		want        string
	}{
		{"github", "issue_comment", []byte(`{}`), http.StatusOK, "ignored: comment on an issue, not a pull request"},
		{"github", "issue_comment", []byte(`{"action":"created","issue":{"number":1,"pull_request":{"url":"x"}},"comment":{"body":"/apply"}}`), http.StatusBadRequest, refused},
		{"github", "pull_request", noRepo, http.StatusBadRequest, refused},
		{"gitlab", "Merge Request Hook", []byte(`{"object_kind":"merge_request","object_attributes":{"iid":0,"action":"open"}}`), http.StatusBadRequest, refused},
	} {
		headers := githubHeaders(c.kind, "d-"+c.kind, c.body)
		if c.forge == "gitlab" {
			headers = map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": c.kind, "Content-Type": "application/json"}
		}
		if code, msg := post(t, srv.URL+"/webhooks/"+c.forge, bytes.NewReader(c.body), headers); code != c.code || strings.TrimSpace(msg) != c.want {
			t.Errorf("%s %s %.60s: %d %q, want %d %q", c.forge, c.kind, c.body, code, msg, c.code, c.want)
		}
	}
	if got := queued(t, q); len(got) != 0 {
		t.Fatalf("payloads without a pull request were queued: %+v", got)
	}
}

func TestRedeliveredGitHubEventIsProcessedOnce(t *testing.T) {
	srv, q := receiver(t)
	body := fixture(t, "github", "issue_comment.created.json")
	h := githubHeaders("issue_comment", "same-delivery", body)
	if code, _ := post(t, srv.URL+"/webhooks/github", bytes.NewReader(body), h); code != http.StatusAccepted {
		t.Fatalf("first delivery: %d", code)
	}
	if code, msg := post(t, srv.URL+"/webhooks/github", bytes.NewReader(body), h); code != http.StatusOK || !strings.Contains(msg, "duplicate") {
		t.Fatalf("redelivery: %d %q", code, msg)
	}
	if got := queued(t, q); len(got) != 1 {
		t.Fatalf("%d events queued, want 1", len(got))
	}
}

func TestOversizeBodiesAreRefusedWithoutReadingThem(t *testing.T) {
	srv, q := receiver(t)
	big := bytes.Repeat([]byte("x"), 2<<20)
	// Declared length over the limit: refused before reading.
	if code, _ := post(t, srv.URL+"/webhooks/github", bytes.NewReader(big), githubHeaders("pull_request", "big", big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("declared oversize: %d, want 413", code)
	}
	// Chunked (no length): refused once past the limit.
	if code, _ := post(t, srv.URL+"/webhooks/github", io.MultiReader(bytes.NewReader(big)), githubHeaders("pull_request", "big2", big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize: %d, want 413", code)
	}
	if code, _ := post(t, srv.URL+"/webhooks/gitlab", bytes.NewReader(big), map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Merge Request Hook"}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("gitlab oversize: %d, want 413", code)
	}
	if got := queued(t, q); len(got) != 0 {
		t.Fatalf("oversize requests queued %d events", len(got))
	}
}

// driftMarker is the marker of the drift issue in the fixtures.
const driftMarker = `<!-- kubeplan:drift {"repo":"acme/platform","project":"web","cluster":"prod"} -->`

// Comments on issues are dropped at the receiver unless they are commands on an issue whose
// body starts with kubeplan's drift marker: nothing is queued for the rest.
func TestIssueCommentsOtherThanDriftCommandsAreIgnored(t *testing.T) {
	srv, q := receiver(t)
	gh := fixture(t, "github", "issue_comment.drift-issue.json")
	gl := fixture(t, "gitlab", "note.issue.json")
	replace := func(body []byte, old, new string) []byte {
		out := bytes.Replace(body, []byte(old), []byte(new), 1)
		if bytes.Equal(out, body) {
			t.Fatalf("%q not in the fixture", old)
		}
		return out
	}
	const markerJSON = `<!-- kubeplan:drift {\"repo\"`
	for _, c := range []struct {
		name, forge string
		body        []byte
		want        string
	}{
		{"github: no marker", "github", fixture(t, "github", "issue_comment.on-issue.json"), "ignored: comment on an issue that is no kubeplan drift issue"},
		{"github: marker not at the top", "github", replace(gh, markerJSON, `See <!-- kubeplan:drift {\"repo\"`), "ignored: comment on an issue that is no kubeplan drift issue"},
		{"github: no command", "github", replace(gh, `"body": "/apply"`, `"body": "thanks, looking"`), "ignored: comment on a drift issue that is no command"},
		{"github: edited", "github", replace(gh, `"action": "created"`, `"action": "edited"`), "ignored: issue_comment action edited"},
		{"gitlab: no marker", "gitlab", replace(gl, markerJSON, `<!-- not kubeplan {\"repo\"`), "ignored: note on an issue that is no kubeplan drift issue"},
		{"gitlab: no command", "gitlab", replace(replace(gl, `"note": "/apply"`, `"note": "on it"`), `"description": "/apply"`, `"description": "on it"`), "ignored: note on a drift issue that is no command"},
		{"gitlab: edited", "gitlab", replace(gl, `"action": "create"`, `"action": "update"`), "ignored: edited note"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := githubHeaders("issue_comment", c.name, c.body)
			if c.forge == "gitlab" {
				h = map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Note Hook", "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": c.name}
			}
			code, msg := post(t, srv.URL+"/webhooks/"+c.forge, bytes.NewReader(c.body), h)
			if code != http.StatusOK || !strings.Contains(msg, c.want) {
				t.Fatalf("%d %q, want 200 %q", code, msg, c.want)
			}
		})
	}
	if got := queued(t, q); len(got) != 0 {
		t.Fatalf("ignored comments queued: %+v", got)
	}
}

func TestEventsKubeplanDoesNotUseAreAcknowledgedAndIgnored(t *testing.T) {
	srv, q := receiver(t)
	for _, c := range []struct{ kind, file, want string }{
		{"ping", "ping.json", "pong"},
		{"pull_request", "pull_request.labeled.json", "ignored: pull_request action labeled"},
		{"issue_comment", "issue_comment.on-issue.json", "ignored: comment on an issue"},
	} {
		body := fixture(t, "github", c.file)
		code, msg := post(t, srv.URL+"/webhooks/github", bytes.NewReader(body), githubHeaders(c.kind, c.file, body))
		if code != http.StatusOK || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %q, want 200 %q", c.file, code, msg, c.want)
		}
	}
	// An edited review changed its body, not the reviewer's stance.
	edited := bytes.Replace(fixture(t, "github", "pull_request_review.submitted.json"), []byte(`"action": "submitted"`), []byte(`"action": "edited"`), 1)
	if code, msg := post(t, srv.URL+"/webhooks/github", bytes.NewReader(edited), githubHeaders("pull_request_review", "edited", edited)); code != http.StatusOK || !strings.Contains(msg, "ignored: pull_request_review action edited") {
		t.Errorf("edited review: %d %q", code, msg)
	}
	body := fixture(t, "gitlab", "push.json")
	if code, msg := post(t, srv.URL+"/webhooks/gitlab", bytes.NewReader(body), map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}); code != http.StatusOK || !strings.Contains(msg, "ignored") {
		t.Errorf("gitlab push: %d %q", code, msg)
	}
	if got := queued(t, q); len(got) != 0 {
		t.Fatalf("ignored events queued: %+v", got)
	}
}

func TestGitLabEventsAreVerifiedParsedAndQueued(t *testing.T) {
	cases := []struct {
		kind, file string
		want       event.Event
	}{
		{"Merge Request Hook", "merge_request.open.json", event.Event{Kind: event.PullRequest, Action: event.Opened, Repo: "acme/platform", ProjectID: 15, Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Sender: "alice"}},
		{"Merge Request Hook", "merge_request.merge.json", event.Event{Kind: event.PullRequest, Action: event.Merged, Repo: "acme/platform", ProjectID: 15, Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Merged: true, Closed: true, Sender: "alice"}},
		{"Merge Request Hook", "merge_request.approved.json", event.Event{Kind: event.Review, Action: event.Approved, Repo: "acme/platform", ProjectID: 15, Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Sender: "alice"}},
		{"Merge Request Hook", "merge_request.unapproved.json", event.Event{Kind: event.Review, Action: event.Unapproved, Repo: "acme/platform", ProjectID: 15, Number: 42,
			HeadSHA: "aa2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Sender: "bob"}},
		{"Merge Request Hook", "merge_request.close.json", event.Event{Kind: event.PullRequest, Action: event.Closed, Repo: "acme/platform", ProjectID: 15, Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Closed: true, Sender: "alice"}},
		{"Note Hook", "note.merge_request.json", event.Event{Kind: event.Comment, Action: event.Commented, Repo: "acme/platform", ProjectID: 15, Number: 42,
			HeadSHA: "9f2c1e7d3b4a5c6d7e8f90a1b2c3d4e5f6a7b8c9", Sender: "bob", CommentID: 1244, CommentBody: "/apply -p web"}},
		{"Note Hook", "note.issue.json", event.Event{Kind: event.IssueComment, Action: event.Commented, Repo: "acme/platform", ProjectID: 15, Number: 57,
			Sender: "bob", CommentID: 1257, CommentBody: "/apply", IssueMarker: driftMarker}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			srv, q := receiver(t)
			body := fixture(t, "gitlab", c.file)
			h := map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": c.kind, "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": "uuid-" + c.file}
			if code, msg := post(t, srv.URL+"/webhooks/gitlab", bytes.NewReader(body), h); code != http.StatusAccepted {
				t.Fatalf("status %d %q, want 202", code, msg)
			}
			got := queued(t, q)
			c.want.Forge, c.want.Delivery = event.GitLab, "uuid-"+c.file
			if len(got) != 1 || got[0] != c.want {
				t.Fatalf("queued %+v\nwant %+v", got, c.want)
			}
			h["X-Gitlab-Token"] = "wrong"
			if code, _ := post(t, srv.URL+"/webhooks/gitlab", bytes.NewReader(body), h); code != http.StatusUnauthorized {
				t.Fatalf("wrong token: %d, want 401", code)
			}
			if got := queued(t, q); len(got) != 0 {
				t.Fatal("a request with the wrong token was queued")
			}
		})
	}
}

// Pushes coalesce into one plan of the newest head, but a merge or a review queued among them
// is never swallowed: its work (roll-out, recording the approved commit) must happen.
func TestMergesAndReviewsAreNeverCoalescedAway(t *testing.T) {
	srv, q := receiver(t)
	for i, name := range []struct{ kind, file string }{
		{"pull_request", "pull_request.synchronize.json"},
		{"pull_request", "pull_request.closed-merged.json"},
		{"pull_request_review", "pull_request_review.submitted.json"},
		{"pull_request", "pull_request.synchronize.json"},
	} {
		body := fixture(t, "github", name.file)
		if code, _ := post(t, srv.URL+"/webhooks/github", bytes.NewReader(body), githubHeaders(name.kind, fmt.Sprintf("d-%d", i), body)); code != http.StatusAccepted {
			t.Fatalf("%s answered %d", name.file, code)
		}
	}
	var got []string
	for _, ev := range queued(t, q) {
		got = append(got, string(ev.Kind)+"/"+string(ev.Action))
	}
	if want := "pull_request/pushed,pull_request/merged,review/submitted"; strings.Join(got, ",") != want {
		t.Fatalf("queued %s, want %s", strings.Join(got, ","), want)
	}
}

// Only a new GitLab note is a command. GitLab also sends a Note Hook when a comment is edited
// (object_attributes.action "update"): bob turning yesterday's "LGTM" into "/apply" must not
// apply. GitLab versions that send no action show an edit in the note's times.
func TestEditedGitLabNoteIsNotACommand(t *testing.T) {
	created := fixture(t, "gitlab", "note.merge_request.json")
	edited := fixture(t, "gitlab", "note.merge_request.update.json")
	withoutAction := func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"action": "`), []byte(`"action_was": "`), 1)
	}
	for _, c := range []struct {
		name   string
		body   []byte
		queued bool
	}{
		{"new note", created, true},
		{"edited note", edited, false},
		{"new note, no action (older GitLab)", withoutAction(created), true},
		{"edited note, no action (older GitLab)", withoutAction(edited), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, q := receiver(t)
			h := map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Note Hook", "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": "uuid-1"}
			code, msg := post(t, srv.URL+"/webhooks/gitlab", bytes.NewReader(c.body), h)
			got := queued(t, q)
			switch {
			case c.queued && (code != http.StatusAccepted || len(got) != 1 || got[0].CommentBody != "/apply -p web"):
				t.Fatalf("%d %q, queued %+v: want the command queued", code, msg, got)
			case !c.queued && (code != http.StatusOK || strings.TrimSpace(msg) != "ignored: edited note" || len(got) != 0):
				t.Fatalf("%d %q, queued %+v: want it ignored as an edited note", code, msg, got)
			}
		})
	}
}

// GitLab's automatic retries and "Resend request" send the event again with a new
// X-Gitlab-Event-UUID (and X-Gitlab-Webhook-UUID) but the same Idempotency-Key: it is worked
// once. A different event (another Idempotency-Key) is not taken for it.
func TestResentGitLabEventIsWorkedOnce(t *testing.T) {
	srv, q := receiver(t)
	body := fixture(t, "gitlab", "note.merge_request.json")
	send := func(eventUUID, key string) (int, string) {
		return post(t, srv.URL+"/webhooks/gitlab", bytes.NewReader(body), map[string]string{"Content-Type": "application/json",
			"X-Gitlab-Event": "Note Hook", "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": eventUUID,
			"X-Gitlab-Webhook-UUID": eventUUID + "-hook", "Idempotency-Key": key})
	}
	if code, msg := send("uuid-first", "key-1"); code != http.StatusAccepted {
		t.Fatalf("first delivery: %d %q", code, msg)
	}
	if code, msg := send("uuid-resent", "key-1"); code != http.StatusOK || !strings.Contains(msg, "duplicate") {
		t.Fatalf("resent delivery: %d %q, want 200 duplicate", code, msg)
	}
	if code, msg := send("uuid-other", "key-2"); code != http.StatusAccepted {
		t.Fatalf("another event: %d %q, want 202", code, msg)
	}
	if got := queued(t, q); len(got) != 2 || got[0].Delivery != "key-1" || got[1].Delivery != "key-2" {
		t.Fatalf("queued %+v, want the event once and the other one", got)
	}
}

// A delivery without its id is refused (400) and not queued: an empty id must not become one
// shared dedup key that swallows every later event without an id as a "duplicate".
func TestWebhookWithoutADeliveryIdIsRefused(t *testing.T) {
	srv, q := receiver(t)
	for _, file := range []string{"pull_request.opened.json", "issue_comment.created.json"} {
		kind, _, _ := strings.Cut(file, ".")
		body := fixture(t, "github", file)
		h := githubHeaders(kind, "", body)
		delete(h, "X-GitHub-Delivery")
		if code, msg := post(t, srv.URL+"/webhooks/github", bytes.NewReader(body), h); code != http.StatusBadRequest || !strings.Contains(msg, "X-GitHub-Delivery") {
			t.Errorf("github %s without X-GitHub-Delivery: %d %q, want 400 naming the header", file, code, msg)
		}
	}
	body := fixture(t, "gitlab", "note.merge_request.json")
	if code, msg := post(t, srv.URL+"/webhooks/gitlab", bytes.NewReader(body), map[string]string{"Content-Type": "application/json",
		"X-Gitlab-Event": "Note Hook", "X-Gitlab-Token": secret}); code != http.StatusBadRequest || !strings.Contains(msg, "Idempotency-Key") {
		t.Errorf("gitlab without a delivery id: %d %q, want 400 naming the headers", code, msg)
	}
	if got := queued(t, q); len(got) != 0 {
		t.Fatalf("deliveries without an id were queued: %+v", got)
	}
}
