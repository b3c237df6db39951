// Package webhook receives forge webhooks: it verifies them, reduces them to events, queues
// them durably and answers at once. Nothing slow happens on the request path.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/store"
)

// Enqueuer is the durable queue events go to.
type Enqueuer interface {
	Enqueue(ctx context.Context, delivery string, job store.Job, coalesce bool) (bool, error)
}

// DefaultMaxBody is the largest webhook body accepted: GitHub caps payloads at 25 MB.
const DefaultMaxBody = 25 << 20

// The queue's job kinds for webhook events. Only jobs of one kind coalesce.
const (
	// JobKind is every event whose work must happen as it came: commands, reviews (GitLab's
	// record the approved commit), merges and closes (roll-out, locks).
	JobKind = "event"
	// PlanJobKind is a pull-request event that only asks for a plan of the newest head: a burst
	// of them coalesces into the newest.
	PlanJobKind = "plan"
)

// bodyLimit is the configured limit, or DefaultMaxBody.
func bodyLimit(configured int64) int64 {
	if configured <= 0 {
		return DefaultMaxBody
	}
	return configured
}

// readBody reads a body up to max bytes; a larger one is refused (413) without reading it
// whole: by its Content-Length when it declares one, else as soon as it passes the limit.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	if r.Method != http.MethodPost {
		http.Error(w, "webhooks are POSTed", http.StatusMethodNotAllowed)
		return nil, false
	}
	if r.ContentLength > max {
		http.Error(w, fmt.Sprintf("body of %d bytes is over the limit of %d", r.ContentLength, max), http.StatusRequestEntityTooLarge)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, fmt.Sprintf("body is over the limit of %d bytes", max), http.StatusRequestEntityTooLarge)
		return nil, false
	case err != nil:
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

// enqueue queues ev and answers 202, or 200 for a delivery already seen. A payload of a kind
// kubeplan uses that names no repository or pull request is malformed: refused, not queued
// to fail later in a worker.
func enqueue(w http.ResponseWriter, r *http.Request, q Enqueuer, log *slog.Logger, ev event.Event) {
	if ev.Repo == "" || ev.Number <= 0 {
		log.Warn("webhook refused: no repository or pull request in the payload", "forge", ev.Forge, "delivery", ev.Delivery, "kind", ev.Kind)
		http.Error(w, "malformed payload: no repository or pull request", http.StatusBadRequest)
		return
	}
	// The delivery id is what makes a redelivery harmless. Both forges always send one; a
	// request without it was changed on the way (a proxy dropping headers) or made by hand.
	// It is refused, loudly, rather than guessed at: an empty id would make every such event
	// a "duplicate" of the first, and a digest of the body would quietly merge two events
	// that happen to carry the same body.
	if ev.Delivery == "" {
		log.Warn("webhook refused: no delivery id", "forge", ev.Forge, "kind", ev.Kind, "repo", ev.Repo, "number", ev.Number)
		http.Error(w, "no delivery id: "+deliveryHeaders(ev.Forge)+" missing", http.StatusBadRequest)
		return
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		http.Error(w, "cannot encode event", http.StatusInternalServerError)
		return
	}
	// Pushes and the like coalesce (only the newest head matters); a merge, a close, a review
	// or a command never does, and is never swallowed by one that does.
	kind, coalesce := JobKind, false
	if ev.Kind == event.PullRequest && !ev.Closed && !ev.Merged {
		kind, coalesce = PlanJobKind, true
	}
	accepted, err := q.Enqueue(r.Context(), string(ev.Forge)+":"+ev.Delivery, store.Job{Key: ev.Key(), Kind: kind, Payload: payload}, coalesce)
	if err != nil {
		log.Error("queue webhook event", "forge", ev.Forge, "delivery", ev.Delivery, "repo", ev.Repo, "number", ev.Number, "err", err)
		http.Error(w, "cannot queue event", http.StatusServiceUnavailable)
		return
	}
	if !accepted {
		log.Info("duplicate delivery ignored", "forge", ev.Forge, "delivery", ev.Delivery)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "duplicate delivery\n")
		return
	}
	log.Info("event queued", "forge", ev.Forge, "delivery", ev.Delivery, "kind", ev.Kind, "action", ev.Action, "repo", ev.Repo, "number", ev.Number)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "queued\n")
}

// deliveryHeaders names the headers a forge's delivery id is read from.
func deliveryHeaders(f event.Forge) string {
	if f == event.GitLab {
		return "Idempotency-Key, X-Gitlab-Event-UUID and X-Gitlab-Webhook-UUID"
	}
	return "X-GitHub-Delivery"
}

func ignore(w http.ResponseWriter, why string) {
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ignored: "+why+"\n")
}
