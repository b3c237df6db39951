package retry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flaky answers the scripted statuses in turn (then 200), with headers per answer.
func flaky(t *testing.T, answers ...func(w http.ResponseWriter)) (*httptest.Server, *int32) {
	t.Helper()
	var calls int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := atomic.AddInt32(&calls, 1)
		body, _ := io.ReadAll(r.Body)
		if int(n) <= len(answers) {
			answers[n-1](w)
			return
		}
		fmt.Fprintf(w, "ok:%s", body)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func status(code int, headers ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
	}
}

func client(waits *[]time.Duration) *http.Client {
	return &http.Client{Transport: &Transport{sleep: func(_ context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return nil
	}}}
}

func TestRetries(t *testing.T) {
	reset := fmt.Sprint(time.Now().Add(30 * time.Second).Unix())
	cases := []struct {
		name      string
		method    string
		path      string
		answers   []func(http.ResponseWriter)
		wantCalls int32
		wantCode  int
		check     func(t *testing.T, waits []time.Duration)
	}{
		{"server errors then success", "GET", "/repos/o/r/pulls/1", []func(http.ResponseWriter){status(502), status(503)}, 3, 200,
			func(t *testing.T, w []time.Duration) {
				if len(w) != 2 || w[1] != 2*w[0] {
					t.Errorf("waits %v, want doubling backoff", w)
				}
			}},
		{"retry-after honoured", "POST", "/repos/o/r/issues/1/comments", []func(http.ResponseWriter){status(429, "Retry-After", "7")}, 2, 200,
			func(t *testing.T, w []time.Duration) {
				if len(w) != 1 || w[0] != 7*time.Second {
					t.Errorf("waits %v, want 7s", w)
				}
			}},
		{"github rate limit reset", "GET", "/x", []func(http.ResponseWriter){status(403, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", reset)}, 2, 200,
			func(t *testing.T, w []time.Duration) {
				if len(w) != 1 || w[0] < 25*time.Second || w[0] > 32*time.Second {
					t.Errorf("waits %v, want about 30s until the reset", w)
				}
			}},
		{"client error not retried", "GET", "/x", []func(http.ResponseWriter){status(404)}, 1, 404, nil},
		{"forbidden without rate limit not retried", "GET", "/x", []func(http.ResponseWriter){status(403)}, 1, 403, nil},
		{"comment creation not retried on 5xx", "POST", "/repos/o/r/issues/1/comments", []func(http.ResponseWriter){status(502)}, 1, 502, nil},
		{"status creation retried on 5xx", "POST", "/repos/o/r/statuses/abc", []func(http.ResponseWriter){status(502)}, 2, 200, nil},
		{"gives up after the attempts", "GET", "/x", []func(http.ResponseWriter){status(500), status(500), status(500), status(500), status(500), status(500)}, 5, 500, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, calls := flaky(t, c.answers...)
			var waits []time.Duration
			req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("payload"))
			resp, err := client(&waits).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.wantCode || *calls != c.wantCalls {
				t.Fatalf("status %d after %d calls, want %d after %d", resp.StatusCode, *calls, c.wantCode, c.wantCalls)
			}
			if c.wantCode == 200 && string(body) != "ok:payload" {
				t.Fatalf("body %q: the retried request lost its body", body)
			}
			if c.check != nil {
				c.check(t, waits)
			}
		})
	}
}
