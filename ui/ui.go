// Package ui serves kubeplan's history to people: the web page under /ui/ (server-rendered
// html/template, one CSS file, no JavaScript) and the JSON API under /api/v1/history. Every
// read is narrowed to the repositories the request's user can read; the Authorizer that says
// which those are, and who signed in, is the caller's (webauth in kubeplan serve).
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/store"
)

// Store is what the page reads: the history, and the locks and drift checks of the state.
type Store interface {
	History(ctx context.Context, f history.Filter) ([]history.Entry, error)
	HistoryEntry(ctx context.Context, seq int64) (history.Entry, bool, error)
	Locks(ctx context.Context, repo string) ([]store.Lock, error)
	Drifts(ctx context.Context, repo string) ([]store.DriftRecord, error)
	// SearchObjects finds objects of the history in repos by kind, namespace or name.
	SearchObjects(ctx context.Context, repos []string, text string, limit int) ([]store.ObjectMatch, error)
	// Repos lists every repository ("forge:org/repo") the store knows of: the candidates
	// the Authorizer narrows to what a user can read.
	Repos(ctx context.Context) ([]string, error)
}

// Authorizer signs people in and says what they can read.
type Authorizer interface {
	// Require lets a request through only when it may see the page (signed in, where
	// sign-in is configured); otherwise it answers itself (a redirect to sign in, 401).
	Require(next http.Handler) http.Handler
	// Readable narrows repository keys ("github:org/repo") to those the request's user can
	// read on the forge.
	Readable(ctx context.Context, repoKeys []string) ([]string, error)
	// SignedIn names the request's signed-in user, if any.
	SignedIn(ctx context.Context) (login string, ok bool)
}

// Open is the Authorizer of a page without sign-in, allowed on loopback only (CheckListen):
// whoever reaches it reads every repository, and nobody is signed in.
type Open struct{}

// Require lets every request through.
func (Open) Require(next http.Handler) http.Handler { return next }

// Readable is every repository.
func (Open) Readable(_ context.Context, repoKeys []string) ([]string, error) { return repoKeys, nil }

// SignedIn is nobody.
func (Open) SignedIn(context.Context) (string, bool) { return "", false }

// Options configure the page.
type Options struct {
	Store Store
	// Auth decides who reads what; nil is Open.
	Auth Authorizer
	// Version is kubeplan's build, shown to signed-in users only.
	Version string
	Log     *slog.Logger
	// Now is the clock ("3 minutes ago"); nil is time.Now.
	Now func() time.Time
}

// UI is the page and the API.
type UI struct {
	opts  Options
	pages map[string]*template.Template
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New parses the templates.
func New(opts Options) (*UI, error) {
	if opts.Store == nil {
		return nil, errors.New("ui: no store")
	}
	if opts.Auth == nil {
		opts.Auth = Open{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	u := &UI{opts: opts, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui templates: %w", err)
	}
	for _, name := range names {
		if name == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(u.funcs()).ParseFS(templateFS, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("ui template %s: %w", name, err)
		}
		u.pages[name[len("templates/"):]] = t
	}
	return u, nil
}

// Routes mounts the page under /ui/ and the API under /api/v1/ on mux; more adds routes
// under /ui/ of its own (the sign-in's). Every answer under those paths, any 404 and those of
// more included, carries the security headers.
func (u *UI) Routes(mux *http.ServeMux, more ...func(*http.ServeMux)) {
	inner := http.NewServeMux()
	page := func(h http.HandlerFunc) http.Handler { return u.opts.Auth.Require(h) }
	inner.Handle("GET /ui/{$}", page(u.overview))
	inner.Handle("GET /ui/entries/{seq}", page(u.entry))
	inner.Handle("GET /ui/objects", page(u.objects))
	inner.Handle("GET /ui/search", page(u.search))
	// The style sheet and icon are no secret: the sign-in page may use them too.
	inner.Handle("GET /ui/static/", http.StripPrefix("/ui/", http.FileServerFS(staticFS)))
	inner.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) { u.fail(w, r, http.StatusNotFound, "No such page.") })
	inner.Handle("GET /api/v1/history", page(u.apiHistory))
	inner.Handle("GET /api/v1/history/{seq}", page(u.apiEntry))
	inner.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{"no such API: see /api/v1/history"})
	})
	for _, m := range more {
		m(inner)
	}
	mux.Handle("/ui/", secure(inner))
	mux.Handle("/api/", secure(inner))
	mux.Handle("/ui", secure(http.RedirectHandler("/ui/", http.StatusMovedPermanently)))
}

// ContentSecurityPolicy allows the page's own style sheet, images and forms, and nothing
// else: no script at all, no framing, no foreign form targets.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the headers every page and API answer carries, before anything else answers.
// (An answer may tighten them: the sign-in pages set a CSP of their own.)
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}
