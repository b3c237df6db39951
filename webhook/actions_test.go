package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/event"
)

// forgeWord is one action word of a forge, delivered in a real payload (the fixture, with its
// action, or its review's state, changed where no fixture has the word).
type forgeWord struct {
	forge, hook, fixture string
	// word is the action the payload carries; the fixture's own unless it is changed to it.
	word string
	// state, when set, changes the review's state ("approved" in the fixture) to it.
	state string
	kind  event.Kind
	// action is what kubeplan makes of the word; "" means the delivery is ignored.
	action event.Action
	// legacy is the word a kubeplan before event.Action queued ("" for the forge's word), and
	// legacyAction what such a queued job is handled as ("" for action).
	legacy       string
	legacyAction event.Action
}

// forgeWords are every word of each forge that kubeplan acts on, and some it ignores.
func forgeWords() []forgeWord {
	return []forgeWord{
		{forge: "github", hook: "pull_request", fixture: "pull_request.opened.json", word: "opened", kind: event.PullRequest, action: event.Opened},
		{forge: "github", hook: "pull_request", fixture: "pull_request.opened.json", word: "reopened", kind: event.PullRequest, action: event.Opened},
		{forge: "github", hook: "pull_request", fixture: "pull_request.synchronize.json", word: "synchronize", kind: event.PullRequest, action: event.Pushed},
		{forge: "github", hook: "pull_request", fixture: "pull_request.opened.json", word: "ready_for_review", kind: event.PullRequest, action: event.Ready},
		{forge: "github", hook: "pull_request", fixture: "pull_request.opened.json", word: "converted_to_draft", kind: event.PullRequest, action: event.Drafted},
		{forge: "github", hook: "pull_request", fixture: "pull_request.closed.json", word: "closed", kind: event.PullRequest, action: event.Closed},
		// GitHub says "closed" for a merge too; the old queue kept "closed", handled alike.
		{forge: "github", hook: "pull_request", fixture: "pull_request.closed-merged.json", word: "closed", kind: event.PullRequest, action: event.Merged, legacyAction: event.Closed},
		{forge: "github", hook: "pull_request", fixture: "pull_request.labeled.json", word: "labeled"},
		{forge: "github", hook: "pull_request", fixture: "pull_request.opened.json", word: "edited"},
		{forge: "github", hook: "issue_comment", fixture: "issue_comment.created.json", word: "created", kind: event.Comment, action: event.Commented},
		{forge: "github", hook: "issue_comment", fixture: "issue_comment.created.json", word: "edited"},
		{forge: "github", hook: "issue_comment", fixture: "issue_comment.created.json", word: "deleted"},
		// A submitted review is read back from the forge's reviews whatever its state: approving,
		// requesting changes or commenting. Only GitLab's approvals are remembered (Approved).
		{forge: "github", hook: "pull_request_review", fixture: "pull_request_review.submitted.json", word: "submitted", kind: event.Review, action: event.Submitted},
		{forge: "github", hook: "pull_request_review", fixture: "pull_request_review.submitted.json", word: "submitted", state: "changes_requested", kind: event.Review, action: event.Submitted},
		{forge: "github", hook: "pull_request_review", fixture: "pull_request_review.submitted.json", word: "submitted", state: "commented", kind: event.Review, action: event.Submitted},
		{forge: "github", hook: "pull_request_review", fixture: "pull_request_review.dismissed.json", word: "dismissed", kind: event.Review, action: event.Dismissed},
		{forge: "github", hook: "pull_request_review", fixture: "pull_request_review.submitted.json", word: "edited"},
		{forge: "github", hook: "merge_group", fixture: "merge_group.checks_requested.json", word: "checks_requested", kind: event.MergeGroup, action: event.Queued},
		{forge: "github", hook: "merge_group", fixture: "merge_group.destroyed.json", word: "destroyed"},

		{forge: "gitlab", hook: "Merge Request Hook", fixture: "merge_request.open.json", word: "open", kind: event.PullRequest, action: event.Opened},
		{forge: "gitlab", hook: "Merge Request Hook", fixture: "merge_request.open.json", word: "reopen", kind: event.PullRequest, action: event.Opened},
		{forge: "gitlab", hook: "Merge Request Hook", fixture: "merge_request.update.json", word: "update", kind: event.PullRequest, action: event.Pushed},
		{forge: "gitlab", hook: "Merge Request Hook", fixture: "merge_request.close.json", word: "close", kind: event.PullRequest, action: event.Closed},
		{forge: "gitlab", hook: "Merge Request Hook", fixture: "merge_request.merge.json", word: "merge", kind: event.PullRequest, action: event.Merged},
		{forge: "gitlab", hook: "Merge Request Hook", fixture: "merge_request.approved.json", word: "approved", kind: event.Review, action: event.Approved},
		{forge: "gitlab", hook: "Merge Request Hook", fixture: "merge_request.approved.json", word: "approval", kind: event.Review, action: event.Approved},
		{forge: "gitlab", hook: "Merge Request Hook", fixture: "merge_request.unapproved.json", word: "unapproved", kind: event.Review, action: event.Unapproved},
		{forge: "gitlab", hook: "Merge Request Hook", fixture: "merge_request.unapproved.json", word: "unapproval", kind: event.Review, action: event.Unapproved},
		// kubeplan queued its own word for a new note.
		{forge: "gitlab", hook: "Note Hook", fixture: "note.merge_request.json", word: "create", kind: event.Comment, action: event.Commented, legacy: "created"},
		{forge: "gitlab", hook: "Note Hook", fixture: "note.merge_request.update.json", word: "update"},
	}
}

// deliver sends the word's payload to its forge's endpoint and returns what was queued.
func (c forgeWord) deliver(t *testing.T) (int, string, []event.Event) {
	t.Helper()
	body := fixture(t, c.forge, c.fixture)
	var fixtureWord struct {
		Action     string `json:"action"`
		Attributes struct {
			Action string `json:"action"`
		} `json:"object_attributes"`
	}
	if err := json.Unmarshal(body, &fixtureWord); err != nil {
		t.Fatal(err)
	}
	from := fixtureWord.Action
	if c.forge == "gitlab" {
		from = fixtureWord.Attributes.Action
	}
	body = replaceOnce(t, body, `"action": "`+from+`"`, `"action": "`+c.word+`"`)
	if c.state != "" {
		body = replaceOnce(t, body, `"state": "approved"`, `"state": "`+c.state+`"`)
	}
	srv, q := receiver(t)
	h := githubHeaders(c.hook, "d-"+c.word, body)
	if c.forge == "gitlab" {
		h = map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": c.hook, "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": "uuid-" + c.word}
	}
	code, msg := post(t, srv.URL+"/webhooks/"+c.forge, bytes.NewReader(body), h)
	return code, msg, queued(t, q)
}

func replaceOnce(t *testing.T, body []byte, old, new string) []byte {
	t.Helper()
	if bytes.Count(body, []byte(old)) != 1 {
		t.Fatalf("the fixture holds %s %d times, want once", old, bytes.Count(body, []byte(old)))
	}
	return bytes.Replace(body, []byte(old), []byte(new), 1)
}

// name is unique in the table: a "#01" that t.Run would add to a repeated name ends a SQLite
// path (store.Open takes the part before it).
func (c forgeWord) name() string {
	name := c.forge + "/" + strings.TrimSuffix(c.fixture, ".json") + "/" + c.word
	if c.state != "" {
		name += "/" + c.state
	}
	return name
}

// Each forge's words are mapped to kubeplan's actions in webhook alone: the workflow switches
// on those.
func TestEveryForgeWordMapsToItsAction(t *testing.T) {
	for _, c := range forgeWords() {
		t.Run(c.name(), func(t *testing.T) {
			code, msg, got := c.deliver(t)
			if c.action == "" {
				if code != http.StatusOK || !strings.HasPrefix(msg, "ignored: ") || len(got) != 0 {
					t.Fatalf("%d %q, queued %+v: want it ignored", code, msg, got)
				}
				return
			}
			if code != http.StatusAccepted || len(got) != 1 {
				t.Fatalf("%d %q, queued %+v: want one event", code, msg, got)
			}
			if got[0].Kind != c.kind || got[0].Action != c.action {
				t.Fatalf("queued %s/%s, want %s/%s", got[0].Kind, got[0].Action, c.kind, c.action)
			}
			if !got[0].Action.Known() {
				t.Fatalf("action %q is not one of event's", got[0].Action)
			}
		})
	}
}

// A job queued by a kubeplan that kept the forge's word is handled after an upgrade as the
// same delivery is now: Decode gives it the action of that word.
func TestQueuedEventsWithTheForgesWordAreDecodedToTheirAction(t *testing.T) {
	for _, c := range forgeWords() {
		if c.action == "" {
			continue
		}
		t.Run(c.name(), func(t *testing.T) {
			_, _, got := c.deliver(t)
			if len(got) != 1 {
				t.Fatalf("queued %+v, want one event", got)
			}
			now := got[0]
			legacy := now
			legacy.Action = event.Action(c.word)
			if c.legacy != "" {
				legacy.Action = event.Action(c.legacy)
			}
			payload, err := json.Marshal(legacy)
			if err != nil {
				t.Fatal(err)
			}
			want := now
			if c.legacyAction != "" {
				want.Action = c.legacyAction
			}
			if ev, err := Decode(payload); err != nil || ev != want {
				t.Fatalf("Decode(%s) = %+v, %v\nwant %+v", payload, ev, err, want)
			}
			// Today's jobs decode as they were queued.
			current, err := json.Marshal(now)
			if err != nil {
				t.Fatal(err)
			}
			if ev, err := Decode(current); err != nil || ev != now {
				t.Fatalf("Decode(%s) = %+v, %v\nwant it unchanged", current, ev, err)
			}
		})
	}
}

// A word that kubeplan never acted on is kept (the workflow leaves it alone, as before); a
// payload that is not an event is an error naming what failed.
func TestDecodeKeepsUnknownWordsAndRefusesGarbage(t *testing.T) {
	for _, c := range []event.Event{
		{Forge: event.GitHub, Kind: event.PullRequest, Action: "labeled", Repo: "acme/platform", Number: 1},
		{Forge: event.GitLab, Kind: event.Review, Action: "open", Repo: "acme/platform", Number: 1}, // a pull-request word on a review
		{Forge: "forgejo", Kind: event.PullRequest, Action: "synchronized", Repo: "acme/platform", Number: 1},
	} {
		payload, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := Decode(payload); err != nil || ev != c {
			t.Errorf("Decode(%s) = %+v, %v, want it unchanged", payload, ev, err)
		}
	}
	if _, err := Decode([]byte(`{"action":`)); err == nil || !strings.Contains(err.Error(), "decode queued event") {
		t.Errorf("Decode of a broken payload: %v, want an error naming the queued event", err)
	}
}
