// Package fetchtrap is a web server for tests of hostile input that names URLs: it counts every
// request, answers with something secret-looking (as a cloud metadata endpoint would) and, at
// /trickle, sends one byte a second for as long as the client waits. A test passes when the
// code under test never contacts it.
package fetchtrap

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Secret is what the trap answers; it must never show up in what the code under test produces.
const Secret = "AWS_SECRET_ACCESS_KEY=leaked-by-kustomize"

// Trap is the server; URL is its address.
type Trap struct {
	*httptest.Server
	hits atomic.Int64
}

// New starts a trap, closed when the test ends.
func New(t testing.TB) *Trap {
	t.Helper()
	trap := &Trap{}
	stop := make(chan struct{})
	trap.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trap.hits.Add(1)
		if r.URL.Path != "/trickle" {
			fmt.Fprintln(w, Secret)
			return
		}
		for {
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
				_, _ = w.Write([]byte("x"))
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(func() { close(stop); trap.Close() })
	return trap
}

// Hits is how many requests the trap received.
func (t *Trap) Hits() int64 { return t.hits.Load() }
