// Package forgehttp is the bottom of every forge client's HTTP stack: kubeplan's credentials
// reach the forge's API host and nothing else (whoever redirects where), a forge that does
// not answer fails the request in bounded time, and failed requests are retried (package
// retry). The clients' own authentication (a token, a GitHub App) wraps what it returns.
package forgehttp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/forge/retry"
)

// DefaultTimeout is how long a forge may take to start answering one request.
const DefaultTimeout = 30 * time.Second

// Options tune the stack; zero values are the defaults.
type Options struct {
	// Timeout bounds the wait for the forge's answer to one request (until its response
	// headers: a large archive may take longer to arrive). Default DefaultTimeout.
	Timeout time.Duration
	// Attempts and Backoff tune the retries (retry.Transport).
	Attempts int
	Backoff  time.Duration
	Log      *slog.Logger
}

// Transport returns the stack for a forge whose API root is api: retries, over the guard that
// keeps credentials on api's scheme and host, over connections that time out.
func Transport(api string, o Options) (http.RoundTripper, error) {
	u, err := url.Parse(api)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("forge API URL %q: want an absolute URL", api)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = timeout
	return &retry.Transport{Attempts: o.Attempts, Backoff: o.Backoff, Log: o.Log,
		Base: &guard{scheme: u.Scheme, host: canonicalHost(u), timeout: timeout, next: base}}, nil
}

// guard sends a request to another scheme or host than the forge's API without credentials:
// a redirect (go-gitlab's PRIVATE-TOKEN header is copied to every hop; GitHub authentication
// is added by a transport, to every request) or a link the forge handed out (GitHub's archive
// link to codeload, which carries its own token) never receives kubeplan's token. It strips
// rather than refuses: such links are how archives are downloaded.
type guard struct {
	scheme, host string
	timeout      time.Duration
	next         http.RoundTripper
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != g.scheme || canonicalHost(req.URL) != g.host {
		stripped := req.Clone(req.Context())
		// Where GitHub and GitLab clients put credentials.
		for _, h := range []string{"Authorization", "Private-Token", "Job-Token", "Cookie"} {
			stripped.Header.Del(h)
		}
		req = stripped
	}
	resp, err := g.next.RoundTrip(req)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && req.Context().Err() == nil {
		err = fmt.Errorf("the forge did not answer within %s: %w", g.timeout, err)
	}
	return resp, err
}

// canonicalHost is a URL's host in lower case with its port, the scheme's default spelled out.
func canonicalHost(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}
