// Package setup creates kubeplan's forge credentials from the operator's machine: a GitHub App
// from a manifest, through the operator's browser and a one-time code received on loopback.
package setup

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	ghforge "github.com/kubeplan/kubeplan/forge/github"
)

// GitHubOptions say which App to create where.
type GitHubOptions struct {
	// BaseURL is the API root: empty for github.com, https://HOST/api/v3/ for Enterprise Server.
	BaseURL string
	// Org creates the App under this organization; empty: under the operator's own account.
	Org string
	// Name is the App's name (unique on the GitHub instance).
	Name string
	// WebhookURL is where GitHub sends webhooks: https://KUBEPLAN_HOST/webhooks/github.
	WebhookURL string
	// Listen is the loopback address of the callback; empty picks a free port on 127.0.0.1.
	Listen string
	// Open shows the operator the page that starts the creation (a browser); nil: only printed.
	Open func(url string) error
	// Out is told what to do, one line at a time.
	Out io.Writer
	// HTTP is the client for the code exchange; nil: a client with a 30s timeout.
	HTTP *http.Client
}

// GitHubApp is what the creation returns: the App's id and slug, and its secrets.
type GitHubApp struct {
	ID            int64
	Slug          string
	HTMLURL       string
	PrivateKey    []byte // PEM
	WebhookSecret string
}

// Manifest is the App manifest kubeplan posts: its permissions and events
// (forge/github.AppPermissions, AppEvents), webhook and callback.
func Manifest(name, webhookURL, redirectURL string) map[string]any {
	return map[string]any{
		"name":                name,
		"url":                 "https://github.com/kubeplan/kubeplan",
		"description":         "Plan → review → apply for Kubernetes manifests in pull requests",
		"hook_attributes":     map[string]any{"url": webhookURL, "active": true},
		"redirect_url":        redirectURL,
		"public":              false,
		"default_permissions": ghforge.ManifestPermissions(),
		"default_events":      ghforge.ManifestEvents(),
	}
}

// CreateGitHubApp creates the App: it serves a start page on loopback whose form posts the
// manifest to GitHub, waits for GitHub's redirect back with the one-time code and the state it
// sent (once; any other state is refused), and exchanges the code for the App's credentials.
// It returns when the App exists, or when ctx ends.
func CreateGitHubApp(ctx context.Context, o GitHubOptions) (*GitHubApp, error) {
	if o.WebhookURL == "" {
		return nil, errors.New("setup github: the webhook URL is required (https://KUBEPLAN_HOST/webhooks/github)")
	}
	if u, err := url.Parse(o.WebhookURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("setup github: webhook URL %q is not an http(s) URL", o.WebhookURL)
	}
	if o.Name == "" {
		o.Name = "kubeplan"
	}
	web, err := ghforge.WebURL(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("setup github: %w", err)
	}
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	// The code arrives in the browser's redirect: only this machine may deliver it.
	if host, _, err := net.SplitHostPort(listen); err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("setup github: callback address %q: want a loopback IP address such as 127.0.0.1:0", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("setup github: listen for the callback: %w", err)
	}
	defer ln.Close()
	local := "http://" + ln.Addr().String()

	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("setup github: state: %w", err)
	}
	cb := &callback{state: hex.EncodeToString(b), codes: make(chan string, 1)}
	manifest, err := json.Marshal(Manifest(o.Name, o.WebhookURL, local+"/callback"))
	if err != nil {
		return nil, err
	}
	action := web + "settings/apps/new"
	if o.Org != "" {
		action = web + "organizations/" + url.PathEscape(o.Org) + "/settings/apps/new"
	}
	cb.form = formData{Action: action + "?state=" + url.QueryEscape(cb.state), Manifest: string(manifest), Name: o.Name, Where: web}

	srv := &http.Server{Handler: cb, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	out := o.Out
	if out == nil {
		out = io.Discard
	}
	fmt.Fprintf(out, "Open %s/ in a browser on this machine to create the GitHub App %q on %s\n", local, o.Name, web)
	if o.Open != nil {
		if err := o.Open(local + "/"); err != nil {
			fmt.Fprintf(out, "(could not open a browser: %v; open the address yourself)\n", err)
		}
	}
	var code string
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("setup github: waiting for GitHub's callback: %w", ctx.Err())
	case code = <-cb.codes:
	}
	return exchange(ctx, o, code)
}

// exchange trades the one-time code for the App's credentials (POST /app-manifests/{code}/conversions).
func exchange(ctx context.Context, o GitHubOptions, code string) (*GitHubApp, error) {
	hc := o.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	client := gh.NewClient(hc)
	if o.BaseURL != "" {
		var err error
		if client, err = client.WithEnterpriseURLs(o.BaseURL, o.BaseURL); err != nil {
			return nil, fmt.Errorf("setup github: base URL %q: %w", o.BaseURL, err)
		}
	}
	cfg, _, err := client.Apps.CompleteAppManifest(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("setup github: exchange the code for the App's credentials: %w", err)
	}
	if cfg.GetID() == 0 || cfg.GetPEM() == "" || cfg.GetWebhookSecret() == "" {
		return nil, errors.New("setup github: GitHub's answer lacks the App id, private key or webhook secret")
	}
	return &GitHubApp{ID: cfg.GetID(), Slug: cfg.GetSlug(), HTMLURL: cfg.GetHTMLURL(), PrivateKey: []byte(cfg.GetPEM()),
		WebhookSecret: cfg.GetWebhookSecret()}, nil
}

// callback serves the start page and receives GitHub's redirect.
type callback struct {
	state string
	form  formData
	codes chan string
	mu    sync.Mutex
	used  bool
}

type formData struct{ Action, Manifest, Name, Where string }

// The manifest flow needs a POST from the operator's browser: this page submits the form itself.
var startPage = template.Must(template.New("start").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>kubeplan: create the GitHub App</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="{{.Action}}">
<input type="hidden" name="manifest" value="{{.Manifest}}">
<p>Creating the GitHub App {{.Name}} on {{.Where}}…</p>
<button type="submit">Continue to GitHub</button>
</form></body></html>
`))

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = startPage.Execute(w, c.form)
	case r.Method == http.MethodGet && r.URL.Path == "/callback":
		state, code := r.URL.Query().Get("state"), r.URL.Query().Get("code")
		c.mu.Lock()
		ok := !c.used && subtle.ConstantTimeCompare([]byte(state), []byte(c.state)) == 1 && code != ""
		replay := c.used
		if ok {
			c.used = true
		}
		c.mu.Unlock()
		switch {
		case replay:
			http.Error(w, "kubeplan: this App creation is already complete; this callback is refused", http.StatusBadRequest)
		case !ok:
			http.Error(w, "kubeplan: the state does not match the App creation kubeplan started; this callback is refused", http.StatusBadRequest)
		default:
			c.codes <- code
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "kubeplan received GitHub's answer and is fetching the App's credentials: you may close this tab.\n")
		}
	default:
		http.NotFound(w, r)
	}
}
