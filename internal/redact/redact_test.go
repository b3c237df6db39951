package redact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestURLsLoseTheirCredentials(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://codeload.github.com/acme/x/legacy.tar.gz/abc?token=AAAA", "https://codeload.github.com/acme/x/legacy.tar.gz/abc?token=REDACTED"},
		{"https://gitlab.example.com/api/v4/projects/1?private_token=glpat-xyz&per_page=100", "https://gitlab.example.com/api/v4/projects/1?per_page=REDACTED&private_token=REDACTED"},
		{"https://bot:s3cret@github.example.com/api/v3/", "https://github.example.com/api/v3/"},
		{"https://example.com/cb#access_token=abc", "https://example.com/cb"},
		{"https://api.github.com/repos/acme/x/pulls/1", "https://api.github.com/repos/acme/x/pulls/1"},
		{"https://user:pw@[::1:bad/x?token=t", "https://[::1:bad/(unparsable URL)"},
	} {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// An error an HTTP client returns quotes the URL it failed on; what kubeplan logs, stores in
// the job and writes in a commit status must not hold the token that URL carried.
func TestErrorsLoseTheCredentialsOfTheURLsTheyQuote(t *testing.T) {
	const token = "ghs_TemporaryArchiveToken"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://codeload.example/acme/x/legacy.tar.gz/abc?token="+token, nil)
	ue := &url.Error{Op: "Get", URL: req.URL.String(), Err: errors.New("connection reset by peer")}
	wrapped := fmt.Errorf("download acme/x@abc: github: download: %w", ue)
	for name, err := range map[string]error{
		"url.Error":  wrapped,
		"plain text": fmt.Errorf("fetch https://bot:%s@git.example/acme/x.git failed", token),
	} {
		got := Error(err)
		if strings.Contains(got.Error(), token) {
			t.Errorf("%s: the token is in %q", name, got)
		}
		if !strings.Contains(got.Error(), "example") {
			t.Errorf("%s: the URL's host is gone from %q", name, got)
		}
		var inner *url.Error
		if errors.As(got, &inner) && strings.Contains(inner.Error(), token) {
			t.Errorf("%s: the unwrapped url.Error still holds the token: %q", name, inner)
		}
		if !errors.Is(got, err) {
			t.Errorf("%s: the redacted error lost its chain", name)
		}
	}
	if got := Text("Get https://codeload.example/x?token=" + token + ": EOF."); got != "Get https://codeload.example/x?token=REDACTED: EOF." {
		t.Errorf("unquoted URL: %q", got)
	}
	if Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
	plain := errors.New("forge answered 502")
	if Error(plain) != plain {
		t.Error("an error without a URL was rewrapped")
	}
}
