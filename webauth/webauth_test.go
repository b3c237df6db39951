package webauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/store"
	"github.com/kubeplan/kubeplan/webauth"
)

const sessionKey = "0123456789abcdef0123456789abcdef-test-only"

// world is the web page behind sign-in, both forges (the emulator) and what a test watches:
// the server's log and every response body a browser received.
type world struct {
	emu    *forgeemu.Emulator
	app    *httptest.Server
	auth   *webauth.Auth
	logs   *syncBuffer
	bodies *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Repositories of the world: who may read what is set per test.
var repoKeys = []string{"github:acme/app", "github:acme/secret", "gitlab:acme/infra/app", "gitlab:acme/infra/secret"}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{emu: forgeemu.New("kubeplan-token", "kubeplan[bot]"), logs: &syncBuffer{}, bodies: &syncBuffer{}}
	t.Cleanup(w.emu.Close)
	for _, r := range repoKeys {
		_, name, _ := strings.Cut(r, ":")
		w.emu.CreateRepo(name, map[string]string{"deploy.yaml": "kind: Deployment"})
	}
	mux := http.NewServeMux()
	w.app = httptest.NewServer(mux)
	t.Cleanup(w.app.Close)
	w.emu.RegisterOAuthApp("github", forgeemu.OAuthApp{ClientID: "Iv23.kubeplan", ClientSecret: "github-client-secret", GitHubApp: true,
		CallbackURL: w.app.URL + "/ui/oauth/github/callback"})
	w.emu.RegisterOAuthApp("gitlab", forgeemu.OAuthApp{ClientID: "gitlab-app-id", ClientSecret: "gitlab-app-secret",
		CallbackURL: w.app.URL + "/ui/oauth/gitlab/callback"})
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.auth, err = webauth.New(webauth.Config{PublicURL: w.app.URL, SessionKey: []byte(sessionKey),
		GitHub: &webauth.OAuthApp{ClientID: "Iv23.kubeplan", ClientSecret: "github-client-secret"},
		GitLab: &webauth.OAuthApp{ClientID: "gitlab-app-id", ClientSecret: "gitlab-app-secret"}},
		webauth.ForgeURLs{GitHub: w.emu.GitHubAPI(), GitLab: w.emu.GitLabAPI()}, db.Nonces(), log)
	if err != nil {
		t.Fatal(err)
	}
	w.auth.Routes(mux)
	// The page a signed-in person sees: who they are and which repositories they may read.
	mux.Handle("GET /ui/", w.auth.Require(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		u, ok := webauth.UserFrom(r.Context())
		readable, err := w.auth.Readable(r.Context(), u, repoKeys)
		if !ok || err != nil {
			http.Error(rw, fmt.Sprintf("no user (%v) or %v", ok, err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(rw, "user=%s:%s name=%q readable=%s", u.Forge, u.Login, u.Name, strings.Join(readable, ","))
	})))
	// Whether the signed-in person may read ?repo on ?forge, asked as ?as (another login).
	mux.Handle("GET /ui/can", w.auth.Require(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		u, _ := webauth.UserFrom(r.Context())
		if as := r.URL.Query().Get("as"); as != "" {
			u.Login = as
		}
		ok, err := w.auth.CanRead(r.Context(), u, r.URL.Query().Get("forge"), r.URL.Query().Get("repo"))
		fmt.Fprintf(rw, "%v %v", ok, err)
	})))
	mux.Handle("GET /api/v1/history", w.auth.Require(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		u, _ := webauth.UserFrom(r.Context())
		_ = json.NewEncoder(rw).Encode(u)
	})))
	return w
}

// browser is a person's browser: its own cookie jar, signed in to the forge as login, and a
// transport that keeps every response body for the "no token anywhere" checks.
func (w *world) browser(t *testing.T, login string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	if login != "" {
		u, _ := url.Parse(w.emu.URL())
		jar.SetCookies(u, []*http.Cookie{w.emu.BrowserCookie(login)})
	}
	return &http.Client{Jar: jar, Transport: recorder{w.bodies}}
}

type recorder struct{ into *syncBuffer }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, _ = r.into.Write(body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, err
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// begin starts a sign-in in browser c and follows it through the forge up to, not into, the
// callback: it returns the callback URL the forge sent the browser to.
func (w *world) begin(t *testing.T, c *http.Client, forgeName, next string) *url.URL {
	t.Helper()
	stop := *c
	var authorizeURL *url.URL
	stop.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(req.URL.Path, "/authorize") {
			authorizeURL = req.URL
		}
		if strings.HasPrefix(req.URL.Path, "/ui/oauth/") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, _ := get(t, &stop, w.app.URL+"/ui/login/"+forgeName+"?next="+url.QueryEscape(next))
	if authorizeURL == nil || authorizeURL.Query().Get("code_challenge_method") != "S256" || authorizeURL.Query().Get("code_challenge") == "" {
		t.Fatalf("the sign-in did not go to the forge with a PKCE challenge: %v", authorizeURL)
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || back.Query().Get("code") == "" {
		t.Fatalf("the forge did not send the browser back with a code: %d %s", resp.StatusCode, back)
	}
	return back
}

// signIn signs browser c in through forgeName and returns the page it lands on.
func (w *world) signIn(t *testing.T, c *http.Client, forgeName, next string) (*http.Response, string) {
	t.Helper()
	return get(t, c, w.begin(t, c, forgeName, next).String())
}

// noTokens fails when any token the forges issued shows in the log or in a page.
func (w *world) noTokens(t *testing.T) {
	t.Helper()
	tokens := w.emu.OAuthTokens()
	if len(tokens) == 0 {
		t.Fatal("the forges issued no tokens: nothing signed in")
	}
	for _, tok := range append(tokens, "github-client-secret", "gitlab-app-secret", sessionKey) {
		if strings.Contains(w.logs.String(), tok) {
			t.Errorf("a secret is in the log: %s…", tok[:6])
		}
		if strings.Contains(w.bodies.String(), tok) {
			t.Errorf("a secret is in a response body: %s…", tok[:6])
		}
	}
}

// Alice reads acme/app on GitHub and not acme/secret. She opens the page, is asked to sign in,
// chooses GitHub, and comes back to the page she asked for, seeing only acme/app.
func TestSignInThroughGitHub(t *testing.T) {
	w := newWorld(t)
	w.emu.SetPermission("acme/app", "alice", forge.PermRead)
	w.emu.SetUserName("alice", "Alice Liddell")
	alice := w.browser(t, "alice")

	resp, body := get(t, alice, w.app.URL+"/ui/projects?x=1")
	if resp.Request.URL.Path != "/ui/login" || !strings.Contains(body, "Sign in with GitHub") || !strings.Contains(body, "Sign in with GitLab") {
		t.Fatalf("not signed in: landed on %s: %s", resp.Request.URL, body)
	}
	next := resp.Request.URL.Query().Get("next")
	resp, body = w.signIn(t, alice, "github", next)
	if resp.Request.URL.RequestURI() != "/ui/projects?x=1" || resp.StatusCode != http.StatusOK {
		t.Fatalf("after sign-in: %s %d", resp.Request.URL, resp.StatusCode)
	}
	if want := `user=github:alice name="Alice Liddell" readable=github:acme/app`; body != want {
		t.Errorf("page: %s\nwant %s", body, want)
	}
	var session *http.Cookie
	for _, c := range resp.Request.Response.Cookies() {
		if c.Name == "kubeplan-session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.MaxAge <= 0 {
		t.Errorf("session cookie: %+v", session)
	}
	if !strings.Contains(w.logs.String(), "ui sign-in") || !strings.Contains(w.logs.String(), "login=alice") {
		t.Errorf("the sign-in is not logged: %s", w.logs)
	}
	w.noTokens(t)
}

// Bob is a Reporter of acme/infra/app (reads its code); Gus only a Guest (GitLab shows him the
// project, not its code); neither is a member of acme/infra/secret, which GitLab hides.
func TestSignInThroughGitLab(t *testing.T) {
	w := newWorld(t)
	w.emu.SetPermission("acme/infra/app", "bob", forge.PermTriage) // Reporter
	w.emu.SetPermission("acme/infra/app", "gus", forge.PermRead)   // Guest
	for _, c := range []struct{ login, want string }{
		{"bob", "user=gitlab:bob name=\"bob\" readable=gitlab:acme/infra/app"},
		{"gus", "user=gitlab:gus name=\"gus\" readable="},
	} {
		resp, body := w.signIn(t, w.browser(t, c.login), "gitlab", "/ui/")
		if resp.Request.URL.Path != "/ui/" || body != c.want {
			t.Errorf("%s: %s %s\nwant %s", c.login, resp.Request.URL, body, c.want)
		}
	}
	w.noTokens(t)
}

// Read access is the signed-in person's own, on their own forge, asked with their token and
// kept a minute: a right taken away on the forge shows after that minute, not at once.
func TestCanReadIsTheSessionsOwn(t *testing.T) {
	w := newWorld(t)
	w.emu.SetPermission("acme/app", "alice", forge.PermAdmin)
	w.emu.SetPermission("acme/app", "bob", forge.PermRead)
	alice := w.browser(t, "alice")
	w.signIn(t, alice, "github", "/ui/")
	for _, c := range []struct{ query, want string }{
		{"forge=github&repo=acme/app", "true <nil>"},
		{"forge=github&repo=acme/secret", "false <nil>"},
		{"forge=github&repo=acme/nothing-here", "false <nil>"},
		{"forge=gitlab&repo=acme/infra/app", "false <nil>"},  // a GitHub session says nothing of GitLab
		{"forge=github&repo=acme/app&as=bob", "false <nil>"}, // only for the session's user
	} {
		if _, body := get(t, alice, w.app.URL+"/ui/can?"+c.query); body != c.want {
			t.Errorf("%s: %s, want %s", c.query, body, c.want)
		}
	}
	if ok, err := w.auth.CanRead(context.Background(), webauth.User{Forge: "github", Login: "alice"}, "github", "acme/app"); ok || err == nil {
		t.Errorf("CanRead outside a signed-in request: %v %v", ok, err)
	}
	w.emu.SetPermission("acme/app", "alice", forge.PermNone)
	if _, body := get(t, alice, w.app.URL+"/ui/can?forge=github&repo=acme/app"); body != "true <nil>" {
		t.Errorf("the answer of a moment ago is not reused: %s", body)
	}
}

// The OAuth state binds the callback to the browser that started the sign-in, once: a forged
// state, a callback opened in another browser and a callback replayed with the very cookie
// that started it are all refused, with a page that says so and a log line, and nobody is
// signed in by them.
func TestStateRefusals(t *testing.T) {
	w := newWorld(t)
	w.emu.SetPermission("acme/app", "alice", forge.PermRead)
	for _, c := range []struct {
		name string
		// attack returns the browser and the callback URL it opens.
		attack     func(t *testing.T) (*http.Client, string)
		page, logs string
	}{
		{"forged state", func(t *testing.T) (*http.Client, string) {
			alice := w.browser(t, "alice")
			back := w.begin(t, alice, "github", "/ui/")
			q := back.Query()
			q.Set("state", "forged-by-someone")
			back.RawQuery = q.Encode()
			return alice, back.String()
		}, "does not belong to this browser", "the state does not match"},
		{"callback from another browser that began its own sign-in", func(t *testing.T) (*http.Client, string) {
			back := w.begin(t, w.browser(t, "alice"), "github", "/ui/")
			victim := w.browser(t, "mallory")
			w.begin(t, victim, "github", "/ui/")
			return victim, back.String()
		}, "does not belong to this browser", "the state does not match"},
		{"callback in a browser that began no sign-in", func(t *testing.T) (*http.Client, string) {
			back := w.begin(t, w.browser(t, "alice"), "github", "/ui/")
			return w.browser(t, ""), back.String()
		}, "not started in this browser", "no sign-in was started in this browser"},
		{"replayed callback, sign-in cookie and all", func(t *testing.T) (*http.Client, string) {
			alice := w.browser(t, "alice")
			back := w.begin(t, alice, "github", "/ui/")
			app, _ := url.Parse(w.app.URL)
			started := alice.Jar.Cookies(app)
			if resp, body := get(t, alice, back.String()); resp.Request.URL.Path != "/ui/" || !strings.Contains(body, "user=github:alice") {
				t.Fatalf("the first use did not sign in: %s %s", resp.Request.URL, body)
			}
			replay := w.browser(t, "")
			replay.Jar.SetCookies(app, started)
			return replay, back.String()
		}, "already used", "the state was used before"},
	} {
		t.Run(c.name, func(t *testing.T) {
			browser, callback := c.attack(t)
			resp, body := get(t, browser, callback)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.page) {
				t.Errorf("callback answered %d: %s", resp.StatusCode, body)
			}
			if !strings.Contains(w.logs.String(), "ui sign-in refused") || !strings.Contains(w.logs.String(), c.logs) {
				t.Errorf("no log line says why: %s", w.logs)
			}
			if resp, _ := get(t, browser, w.app.URL+"/ui/"); resp.Request.URL.Path != "/ui/login" {
				t.Errorf("the refused browser is signed in: %s", resp.Request.URL)
			}
		})
	}
	w.noTokens(t)
}

// A session cookie changed by a byte, or sealed with another server's key, is no session: the
// browser is asked to sign in, the API answers 401.
func TestTamperedSessionRefused(t *testing.T) {
	w := newWorld(t)
	w.emu.SetPermission("acme/app", "alice", forge.PermRead)
	alice := w.browser(t, "alice")
	w.signIn(t, alice, "github", "/ui/")
	app, _ := url.Parse(w.app.URL)
	var session *http.Cookie
	for _, c := range alice.Jar.Cookies(app) {
		if c.Name == "kubeplan-session" {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	flipped := []byte(session.Value)
	flipped[len(flipped)/2] ^= 1
	for name, value := range map[string]string{"a byte flipped": string(flipped), "empty": "", "another value": "eyJmb3JnZSI6ImdpdGh1YiJ9"} {
		t.Run(name, func(t *testing.T) {
			mallory := w.browser(t, "")
			mallory.Jar.SetCookies(app, []*http.Cookie{{Name: "kubeplan-session", Value: value}})
			if resp, _ := get(t, mallory, w.app.URL+"/ui/"); resp.Request.URL.Path != "/ui/login" {
				t.Errorf("page: %s", resp.Request.URL)
			}
			resp, body := get(t, mallory, w.app.URL+"/api/v1/history")
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("Content-Type"), "json") || !strings.Contains(body, `"error"`) {
				t.Errorf("API: %d %s", resp.StatusCode, body)
			}
		})
	}
	// The same server with another key does not take the first's cookies.
	other, err := webauth.New(webauth.Config{PublicURL: w.app.URL, SessionKey: []byte(strings.Repeat("k", 32)),
		GitHub: &webauth.OAuthApp{ClientID: "Iv23.kubeplan", ClientSecret: "github-client-secret"}},
		webauth.ForgeURLs{GitHub: w.emu.GitHubAPI()}, nopNonces{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/history", nil)
	req.AddCookie(session)
	other.Require(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("a cookie sealed with another key: %d", rec.Code)
	}
}

type nopNonces struct{}

func (nopNonces) UseOnce(context.Context, string, time.Time) (bool, error) { return true, nil }

// Signing out ends the session in that browser; a sign-out posted from another site is
// refused and changes nothing.
func TestLogout(t *testing.T) {
	w := newWorld(t)
	alice := w.browser(t, "alice")
	w.signIn(t, alice, "github", "/ui/")
	req, _ := http.NewRequest(http.MethodPost, w.app.URL+"/ui/logout", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := alice.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out from another site: %d", resp.StatusCode)
	}
	if resp, body := get(t, alice, w.app.URL+"/ui/"); !strings.Contains(body, "user=github:alice") {
		t.Fatalf("still signed in after a refused sign-out? %s %s", resp.Request.URL, body)
	}
	req, _ = http.NewRequest(http.MethodPost, w.app.URL+"/ui/logout", nil)
	req.Header.Set("Origin", w.app.URL)
	resp, err = alice.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/login" {
		t.Errorf("after sign-out: %s", resp.Request.URL)
	}
	if resp, _ := get(t, alice, w.app.URL+"/ui/"); resp.Request.URL.Path != "/ui/login" {
		t.Errorf("signed out, the page still opens: %s", resp.Request.URL)
	}
}

// Where to go after sign-in is a path on this site; anything else lands on /ui/.
func TestNoOpenRedirect(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct{ next, want string }{
		{"https://evil.example", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/\\evil.example", "/ui/"},
		{"javascript:alert(1)", "/ui/"},
		{"https:/evil.example", "/ui/"},
		{"/ui/objects?kind=Deployment&name=api", "/ui/objects?kind=Deployment&name=api"},
	} {
		resp, _ := w.signIn(t, w.browser(t, "alice"), "github", c.next)
		if got := resp.Request.URL; got.Host != strings.TrimPrefix(w.app.URL, "http://") || got.RequestURI() != c.want {
			t.Errorf("next=%s: landed on %s, want %s", c.next, got, c.want)
		}
	}
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		listen string
		signIn bool
		ok     bool
	}{
		{":8080", false, false},
		{"0.0.0.0:8080", false, false},
		{"[::]:8080", false, false},
		{"10.0.0.5:8080", false, false},
		{"kubeplan.example.com:8080", false, false},
		{"127.0.0.1:8080", false, true},
		{"127.0.0.2:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{":8080", true, true},
		{"0.0.0.0:443", true, true},
		{"nonsense", false, false},
	} {
		err := webauth.CheckListen(c.listen, c.signIn)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %v) = %v", c.listen, c.signIn, err)
		}
		if err != nil && c.listen == ":8080" && (!strings.Contains(err.Error(), "127.0.0.1:8080") || !strings.Contains(err.Error(), "KUBEPLAN_UI_SESSION_KEY")) {
			t.Errorf("the error does not say how to fix it: %v", err)
		}
	}
}

// Without sign-in configured everyone is the local user and may read everything (CheckListen
// keeps such a page on loopback).
func TestLocalModeWithoutSignIn(t *testing.T) {
	a, err := webauth.New(webauth.Config{}, webauth.ForgeURLs{}, nil, nil)
	if err != nil || a.SignInConfigured() {
		t.Fatalf("%v %v", a, err)
	}
	var user webauth.User
	var readable []string
	a.Require(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		user, _ = webauth.UserFrom(r.Context())
		readable, err = a.Readable(r.Context(), user, repoKeys)
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/ui/", nil))
	if user.Forge != webauth.LocalForge || err != nil || len(readable) != len(repoKeys) {
		t.Errorf("local user %+v reads %v (%v)", user, readable, err)
	}
}

// The server's ui settings become the sign-in's, secrets included, and its forges' addresses.
func TestFromServerConfig(t *testing.T) {
	var c config.Config
	c.UI.PublicURL, c.UI.GitLab.ApplicationID, c.UI.GitLab.Secret, c.UI.SessionKey = "https://k.example", "app", "secret", []byte(sessionKey)
	c.GitLab.BaseURL = "https://gitlab.example.com/api/v4"
	cfg, forges := webauth.FromConfig(c.UI), webauth.ForgeURLsFrom(c)
	if cfg.GitHub != nil || cfg.GitLab == nil || cfg.GitLab.ClientID != "app" || cfg.GitLab.ClientSecret != "secret" || forges.GitLab != c.GitLab.BaseURL {
		t.Fatalf("%+v %+v", cfg, forges)
	}
	if a, err := webauth.New(cfg, forges, nopNonces{}, nil); err != nil || !a.SignInConfigured() {
		t.Errorf("%v", err)
	}
}

func TestNewRefusesIncompleteSignIn(t *testing.T) {
	app := &webauth.OAuthApp{ClientID: "id", ClientSecret: "secret"}
	key := []byte(sessionKey)
	for _, c := range []struct {
		name string
		cfg  webauth.Config
		once webauth.NonceStore
		want string
	}{
		{"no public URL", webauth.Config{GitHub: app, SessionKey: key}, nopNonces{}, "public URL"},
		{"relative public URL", webauth.Config{PublicURL: "/ui", GitHub: app, SessionKey: key}, nopNonces{}, "public URL"},
		{"short key", webauth.Config{PublicURL: "https://k.example", GitLab: app, SessionKey: key[:31]}, nopNonces{}, "at least 32 bytes"},
		{"no nonce store", webauth.Config{PublicURL: "https://k.example", GitHub: app, SessionKey: key}, nil, "nonce store"},
		{"no secret", webauth.Config{PublicURL: "https://k.example", GitHub: &webauth.OAuthApp{ClientID: "id"}, SessionKey: key}, nopNonces{}, "client id and secret"},
	} {
		if _, err := webauth.New(c.cfg, webauth.ForgeURLs{}, c.once, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// GitLab's tokens last two hours: the session renews Bob's with its refresh token and he stays
// signed in, seeing what he may read; the sign-in itself ends after its lifetime (8h).
func TestSessionRenewsTheForgeToken(t *testing.T) {
	w := newWorld(t)
	w.emu.SetPermission("acme/infra/app", "bob", forge.PermMaintain)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	w.emu.SetClock(clock)
	webauth.SetClock(w.auth, clock)
	bob := w.browser(t, "bob")
	w.signIn(t, bob, "gitlab", "/ui/")
	issued := len(w.emu.OAuthTokens())

	advance(2*time.Hour + time.Minute)
	resp, body := get(t, bob, w.app.URL+"/ui/")
	if resp.StatusCode != http.StatusOK || body != `user=gitlab:bob name="bob" readable=gitlab:acme/infra/app` {
		t.Fatalf("after two hours: %s %d %s", resp.Request.URL, resp.StatusCode, body)
	}
	if len(w.emu.OAuthTokens()) <= issued || len(resp.Cookies()) == 0 {
		t.Errorf("the token was not renewed into a new session cookie: %d tokens, cookies %v", len(w.emu.OAuthTokens()), resp.Cookies())
	}
	advance(time.Hour)
	if _, body := get(t, bob, w.app.URL+"/ui/"); !strings.HasSuffix(body, "readable=gitlab:acme/infra/app") {
		t.Errorf("with the renewed token: %s", body)
	}
	advance(5 * time.Hour)
	if resp, _ := get(t, bob, w.app.URL+"/ui/"); resp.Request.URL.Path != "/ui/login" {
		t.Errorf("past the sign-in's lifetime: %s", resp.Request.URL)
	}
	w.noTokens(t)
}

// Behind https the cookies are Secure, HttpOnly, SameSite=Lax and __Host- prefixed (no
// subdomain or plain-http page can plant one), and the forge is told the public callback.
func TestCookiesOnHTTPS(t *testing.T) {
	a, err := webauth.New(webauth.Config{PublicURL: "https://kubeplan.example.com", SessionKey: []byte(sessionKey),
		GitLab: &webauth.OAuthApp{ClientID: "app", ClientSecret: "secret"}}, webauth.ForgeURLs{GitLab: "https://gitlab.example.com/api/v4"}, nopNonces{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Routes(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://kubeplan.example.com/ui/login/gitlab?next=/ui/", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies: %v", cookies)
	}
	c := cookies[0]
	if c.Name != "__Host-kubeplan-signin" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.MaxAge <= 0 || c.MaxAge > 600 {
		t.Errorf("sign-in cookie: %+v", c)
	}
	to, _ := url.Parse(rec.Header().Get("Location"))
	q := to.Query()
	if to.Host != "gitlab.example.com" || to.Path != "/oauth/authorize" || q.Get("redirect_uri") != "https://kubeplan.example.com/ui/oauth/gitlab/callback" ||
		q.Get("scope") != "read_user read_api" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || len(q.Get("state")) < 20 {
		t.Errorf("sent to %s", to)
	}
}
