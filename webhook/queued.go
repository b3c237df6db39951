package webhook

import (
	"encoding/json"
	"fmt"

	"github.com/kubeplan/kubeplan/event"
)

// Decode reads back an event that enqueue queued. Jobs queued by a kubeplan before event had
// actions of its own hold the forge's word ("synchronize", "update", "approval"…); they are
// given the action a delivery of that word gets now, so an upgrade leaves no queued job behind.
// A word neither kubeplan's nor the forge's is kept, and the workflow leaves it alone.
func Decode(payload []byte) (event.Event, error) {
	var ev event.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return event.Event{}, fmt.Errorf("decode queued event: %w", err)
	}
	if a := legacyAction(ev); a != "" {
		ev.Action = a
	}
	return ev, nil
}

// legacyAction is the action for an event queued with its forge's word, or "" when its action
// is kubeplan's own (some of those are spelt as a forge spells them, with the same meaning) or
// no word kubeplan ever acted on. A merged pull request that GitHub reported "closed" stays
// Closed: the workflow handles both alike, and the event's Merged says which it was.
func legacyAction(ev event.Event) event.Action {
	if ev.Action.Known() {
		return ""
	}
	word := string(ev.Action)
	switch ev.Forge {
	case event.GitHub:
		return githubAction(ev.Kind, word)
	case event.GitLab:
		if ev.Kind == event.Comment && word == "created" { // kubeplan's word for a new note
			return event.Commented
		}
		if kind, a := gitlabMergeRequestAction(word); kind == ev.Kind {
			return a
		}
	}
	return ""
}
