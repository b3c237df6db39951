package webhook

import (
	"bytes"
	"context"
	"encoding/json"
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

// recorder is an Enqueuer that keeps what it is given.
type recorder struct{ jobs []store.Job }

func (r *recorder) Enqueue(_ context.Context, _ string, job store.Job, _ bool) (bool, error) {
	r.jobs = append(r.jobs, job)
	return true, nil
}

// seeds adds every faithful payload fixture of a forge to the corpus, with its event name.
func seeds(f *testing.F, forge string) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "webhooks", forge, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no %s fixtures: %v", forge, err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		kind, _, _ := strings.Cut(filepath.Base(file), ".")
		f.Add(kind, body)
	}
}

// checkAnswer holds for any signed body, however mangled: the receiver answers without
// panicking, never with a server error, and what it queues is an event the workflow can read.
func checkAnswer(t *testing.T, code int, q *recorder) {
	if code >= 500 {
		t.Fatalf("answered %d", code)
	}
	for _, j := range q.jobs {
		var ev event.Event
		if err := json.Unmarshal(j.Payload, &ev); err != nil {
			t.Fatalf("queued a payload the workflow cannot decode: %v", err)
		}
		if ev.Repo == "" || ev.Number <= 0 || j.Key == "" {
			t.Fatalf("queued an event without a pull request: key %q, %+v", j.Key, ev)
		}
	}
}

// A signed GitHub webhook with any event name and any body (a hostile or broken sender that
// has the secret, or a payload shape GitHub changes).
func FuzzGitHubWebhook(f *testing.F) {
	seeds(f, "github")
	f.Add("pull_request", []byte(`{"action":"opened","number":-1,"pull_request":null,"repository":{}}`))
	f.Add("issue_comment", []byte(`{"action":"created","issue":{"number":1,"pull_request":{}},"comment":{"body":"/apply"}}`))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		q := &recorder{}
		h := &GitHub{Secret: []byte(secret), Queue: q, MaxBody: 1 << 20, Log: log}
		req := httptest.NewRequest(http.MethodPost, "/webhooks/github", bytes.NewReader(body))
		for k, v := range githubHeaders(kind, "fuzz-delivery", body) {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkAnswer(t, w.Code, q)
	})
}

// A GitLab webhook with the right token, any event name and any body.
func FuzzGitLabWebhook(f *testing.F) {
	seeds(f, "gitlab")
	f.Add("merge_request", []byte(`{"object_kind":"merge_request","object_attributes":null,"project":{}}`))
	f.Add("note", []byte(`{"object_kind":"note","merge_request":{"iid":0},"object_attributes":{"note":"/plan"}}`))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	names := map[string]string{"merge_request": "Merge Request Hook", "note": "Note Hook", "push": "Push Hook"}
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		q := &recorder{}
		h := &GitLab{Token: []byte(secret), Queue: q, MaxBody: 1 << 20, Log: log}
		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", bytes.NewReader(body))
		header := kind
		if n, ok := names[kind]; ok {
			header = n
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Gitlab-Event", header)
		req.Header.Set("X-Gitlab-Token", secret)
		req.Header.Set("X-Gitlab-Event-UUID", "fuzz-delivery")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkAnswer(t, w.Code, q)
	})
}
