package forgehttp

import (
	"net/http"
	"testing"
)

type seen struct{ auth, token string }

type capture struct{ got *seen }

func (c capture) RoundTrip(req *http.Request) (*http.Response, error) {
	*c.got = seen{req.Header.Get("Authorization"), req.Header.Get("Private-Token")}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
}

// Credentials go to the API's scheme and host (however its name is spelled) and nowhere else:
// not another host, not a subdomain, not the same host over plain HTTP or on another port.
func TestCredentialsGoToTheAPIHostOnly(t *testing.T) {
	for _, c := range []struct {
		url  string
		keep bool
	}{
		{"https://git.example.com/api/v4/projects/1", true},
		{"https://GIT.example.com:443/api/v4/projects/1", true},
		{"https://codeload.git.example.com/acme/x.tar.gz", false},
		{"https://evil.example/api/v4/projects/1", false},
		{"http://git.example.com/api/v4/projects/1", false},
		{"https://git.example.com:8443/api/v4/projects/1", false},
	} {
		var got seen
		g := &guard{scheme: "https", host: "git.example.com:443", next: capture{&got}}
		req, _ := http.NewRequest(http.MethodGet, c.url, nil)
		req.Header.Set("Authorization", "Bearer secret")
		req.Header.Set("PRIVATE-TOKEN", "secret")
		if _, err := g.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if kept := got.auth != "" || got.token != ""; kept != c.keep {
			t.Errorf("%s: credentials sent %v, want %v", c.url, kept, c.keep)
		}
		if req.Header.Get("Authorization") == "" {
			t.Errorf("%s: the caller's request was changed", c.url)
		}
	}
}
