// Package retry is an http.RoundTripper for forge APIs: it retries rate-limited requests and
// server errors with backoff, honouring Retry-After and rate-limit reset headers, and never
// retries other client errors.
package retry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Transport retries through Base.
type Transport struct {
	Base http.RoundTripper
	// Attempts is the most tries per request (default 5).
	Attempts int
	// MaxWait caps one wait, whatever the forge asks (default 60s).
	MaxWait time.Duration
	// Backoff is the first wait for server errors; it doubles (default 500ms).
	Backoff time.Duration
	Log     *slog.Logger
	sleep   func(context.Context, time.Duration) error
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	attempts, maxWait, backoff := t.Attempts, t.MaxWait, t.Backoff
	if attempts <= 0 {
		attempts = 5
	}
	if maxWait <= 0 {
		maxWait = 60 * time.Second
	}
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	sleep := t.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	for attempt := 1; ; attempt++ {
		resp, err := base.RoundTrip(req)
		wait, retry := decide(req, resp, err, backoff<<(attempt-1))
		if !retry || attempt == attempts || (req.Body != nil && req.GetBody == nil) {
			return resp, err
		}
		wait = min(wait, maxWait)
		if t.Log != nil {
			// URL path only: query strings may carry tokens (GitLab private_token).
			t.Log.Warn("forge request will be retried", "method", req.Method, "host", req.URL.Host, "path", req.URL.Path,
				"status", statusOf(resp), "err", errString(err), "attempt", attempt, "wait", wait)
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

// decide says whether to retry and after how long.
func decide(req *http.Request, resp *http.Response, err error, backoff time.Duration) (time.Duration, bool) {
	if err != nil {
		// Transport error: the request may not have reached the forge; retry reads only.
		return backoff, req.Context().Err() == nil && idempotent(req)
	}
	if wait, limited := rateLimited(resp); limited {
		return wait, true // refused, not processed: safe for any method
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
		// A POST that created a comment before failing must not create it twice; statuses
		// are idempotent by context, so their POSTs are retried too.
		return backoff, idempotent(req) || strings.Contains(req.URL.Path, "/statuses/")
	}
	return 0, false
}

// rateLimited recognises GitHub's and GitLab's rate-limit answers and their reset times.
func rateLimited(resp *http.Response) (time.Duration, bool) {
	h := resp.Header
	limited := resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusForbidden && (h.Get("Retry-After") != "" || h.Get("X-RateLimit-Remaining") == "0")
	if !limited {
		return 0, false
	}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil {
		return time.Duration(s) * time.Second, true
	}
	for _, k := range []string{"X-RateLimit-Reset", "RateLimit-Reset"} {
		if epoch, err := strconv.ParseInt(h.Get(k), 10, 64); err == nil {
			if d := time.Until(time.Unix(epoch, 0)); d > 0 {
				return d + time.Second, true
			}
			return time.Second, true
		}
	}
	return time.Minute, true // GitHub's advice for secondary limits without a header
}

func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
