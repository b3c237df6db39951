// Package webauth signs people in to the web page through the forge they already use (GitHub
// OAuth or a GitHub App's user authorization, GitLab OAuth) and answers, with each person's own
// forge token, which repositories they may read. Sessions live in signed, encrypted cookies
// (the forge token inside never leaves the server readable); OAuth states are bound to the
// browser that started the sign-in and used once across replicas (NonceStore). Without sign-in
// configured everyone is a local user, which CheckListen allows on loopback only.
package webauth

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge/forgehttp"
)

// User is who is at the browser. It never holds the forge token, so rendering it is safe.
type User struct {
	// Forge is "github" or "gitlab" ("local" without sign-in); Login the forge username.
	Forge, Login, Name string
}

// LocalForge is the Forge of the user everyone is when sign-in is not configured.
const LocalForge = "local"

// OAuthApp is the application registered with a forge that people sign in through.
type OAuthApp struct {
	ClientID, ClientSecret string
	// Scopes asked for; nil is the forge's default here (GitHub: none, which suits a GitHub
	// App; GitLab: read_user read_api).
	Scopes []string
}

// Config is the sign-in configuration (config keys ui.*).
type Config struct {
	// PublicURL is the page's address as browsers reach it; callbacks are
	// <PublicURL>/ui/oauth/{github,gitlab}/callback. Cookies are Secure when it is https.
	PublicURL string
	// GitHub and GitLab are the forges people may sign in through; nil: not offered.
	GitHub, GitLab *OAuthApp
	// SessionKey (at least 32 bytes, the same on every replica) signs and encrypts cookies.
	SessionKey []byte
	// SessionLifetime bounds a sign-in (default 8h); a forge token expiring sooner ends it sooner.
	SessionLifetime time.Duration
	// AccessTTL is how long a read-access answer is reused (default 1m).
	AccessTTL time.Duration
}

// FromConfig is the sign-in configuration of a server's ui settings.
func FromConfig(u config.UI) Config {
	c := Config{PublicURL: u.PublicURL, SessionKey: u.SessionKey, SessionLifetime: u.SessionLifetime.Duration}
	if u.GitHub.ClientID != "" {
		c.GitHub = &OAuthApp{ClientID: u.GitHub.ClientID, ClientSecret: u.GitHub.ClientSecret, Scopes: u.GitHub.Scopes}
	}
	if u.GitLab.ApplicationID != "" {
		c.GitLab = &OAuthApp{ClientID: u.GitLab.ApplicationID, ClientSecret: u.GitLab.Secret}
	}
	return c
}

// ForgeURLs says where the forges are: the API roots as github.baseURL and gitlab.baseURL say
// them. The sign-in pages are on the same host (github.com's API is api.github.com).
type ForgeURLs struct {
	// GitHub is "" for github.com, https://HOST/api/v3/ for Enterprise Server.
	GitHub string
	// GitLab is "" for gitlab.com, https://HOST/api/v4 for self-managed.
	GitLab string
	// HTTP tunes timeouts (forgehttp.Options); requests are tried once, a person is waiting.
	HTTP forgehttp.Options
}

// ForgeURLsFrom is where a server's configuration says the forges are (github.baseURL,
// gitlab.baseURL, forgeTimeout).
func ForgeURLsFrom(c config.Config) ForgeURLs {
	return ForgeURLs{GitHub: c.GitHub.BaseURL, GitLab: c.GitLab.BaseURL, HTTP: forgehttp.Options{Timeout: c.ForgeTimeout.Duration}}
}

// NonceStore records single-use values (OAuth states) across replicas: UseOnce answers true
// the first time it sees nonce before expires, false after.
type NonceStore interface {
	UseOnce(ctx context.Context, nonce string, expires time.Time) (bool, error)
}

// Auth is sign-in and read access for the web page.
type Auth struct {
	cfg     Config
	forges  map[string]*provider
	once    NonceStore
	log     *slog.Logger
	session *securecookie.SecureCookie
	state   *securecookie.SecureCookie
	secure  bool
	access  *accessCache
	now     func() time.Time
}

const (
	defaultLifetime = 8 * time.Hour
	// stateLifetime is how long a person has on the forge's pages to sign in.
	stateLifetime = 10 * time.Minute
)

// New checks the configuration and returns the sign-in. With no forge configured it is the
// local mode: everyone passes Require as a local user (allow it on loopback only: CheckListen).
func New(cfg Config, forges ForgeURLs, once NonceStore, log *slog.Logger) (*Auth, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = defaultLifetime
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = time.Minute
	}
	a := &Auth{cfg: cfg, forges: map[string]*provider{}, once: once, log: log, now: time.Now,
		access: newAccessCache(cfg.AccessTTL, 10000)}
	if !a.SignInConfigured() {
		return a, nil
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || pub.Host == "" || pub.Scheme != "https" && pub.Scheme != "http" {
		return nil, errors.New("webauth: the public URL must be the page's absolute http(s) address (ui.publicURL)")
	}
	if len(cfg.SessionKey) < 32 {
		return nil, errors.New("webauth: the session key must be at least 32 bytes (KUBEPLAN_UI_SESSION_KEY)")
	}
	if once == nil {
		return nil, errors.New("webauth: a nonce store is required to use OAuth states once")
	}
	a.secure = pub.Scheme == "https"
	callback := strings.TrimSuffix(cfg.PublicURL, "/") + "/ui/oauth/%s/callback"
	opts := forges.HTTP
	opts.Attempts = 1
	for name, app := range map[string]*OAuthApp{"github": cfg.GitHub, "gitlab": cfg.GitLab} {
		if app == nil {
			continue
		}
		if app.ClientID == "" || app.ClientSecret == "" {
			return nil, fmt.Errorf("webauth: %s sign-in needs a client id and secret", name)
		}
		base := forges.GitHub
		if name == "gitlab" {
			base = forges.GitLab
		}
		p, err := newProvider(name, base, *app, fmt.Sprintf(callback, name), opts)
		if err != nil {
			return nil, err
		}
		a.forges[name] = p
	}
	// Separate keys for the signature and the encryption, both from the one configured secret.
	hashKey, err := hkdf.Key(sha256.New, cfg.SessionKey, nil, "kubeplan ui cookie signature", 32)
	if err != nil {
		return nil, fmt.Errorf("webauth: derive cookie keys: %w", err)
	}
	blockKey, err := hkdf.Key(sha256.New, cfg.SessionKey, nil, "kubeplan ui cookie encryption", 32)
	if err != nil {
		return nil, fmt.Errorf("webauth: derive cookie keys: %w", err)
	}
	a.session = securecookie.New(hashKey, blockKey).SetSerializer(securecookie.JSONEncoder{}).MaxAge(int(cfg.SessionLifetime / time.Second))
	a.state = securecookie.New(hashKey, blockKey).SetSerializer(securecookie.JSONEncoder{}).MaxAge(int(stateLifetime / time.Second))
	return a, nil
}

// SignInConfigured says whether people sign in through a forge (otherwise everyone is local).
func (a *Auth) SignInConfigured() bool { return a.cfg.GitHub != nil || a.cfg.GitLab != nil }

// session is what the session cookie holds, encrypted.
type session struct {
	User
	Token string `json:"token"`
	// Refresh renews Token when it expires (GitLab's tokens last 2 hours, a GitHub App's 8).
	Refresh      string `json:"refresh,omitempty"`
	TokenExpires int64  `json:"tokenExpires,omitempty"` // unix seconds; 0: never
	Expires      int64  `json:"expires"`                // unix seconds: the sign-in's end
}

type ctxKey struct{}

// UserFrom is the signed-in user of a request that passed Require.
func UserFrom(ctx context.Context) (User, bool) {
	s, ok := ctx.Value(ctxKey{}).(*session)
	if !ok {
		return User{}, false
	}
	return s.User, true
}

func sessionFrom(ctx context.Context) (*session, bool) {
	s, ok := ctx.Value(ctxKey{}).(*session)
	return s, ok
}

// Require lets signed-in requests through with their user in the context (UserFrom). Without a
// valid session a browser is sent to sign in and comes back; paths under /api/ answer 401 JSON.
// In local mode everyone passes as the local user.
func (a *Auth) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.SignInConfigured() {
			s := &session{User: User{Forge: LocalForge, Login: "local", Name: "local user"}}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
			return
		}
		s, ok := a.readSession(r)
		if !ok {
			a.refuse(w, r)
			return
		}
		if now := a.now().Unix(); s.TokenExpires != 0 && now >= s.TokenExpires-int64(renewEarly/time.Second) {
			renewed, err := a.renew(r.Context(), s)
			switch {
			case err == nil:
				http.SetCookie(w, renewed.cookie)
				s = renewed.session
			case now >= s.TokenExpires:
				a.log.Info("ui session ended: the forge token expired and could not be renewed", "forge", s.Forge, "login", s.Login, "err", err)
				a.refuse(w, r)
				return
			default:
				// Another request of this browser may have spent the refresh token a moment ago;
				// the token still works, and that request's cookie carries the new one.
				a.log.Debug("ui session: the forge token could not be renewed yet", "forge", s.Forge, "login", s.Login, "err", err)
			}
		}
		// Pages behind sign-in are one person's: never kept by a shared cache.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Add("Vary", "Cookie")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

func (a *Auth) refuse(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"sign-in required","login":"/ui/login"}` + "\n"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "sign-in required", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

func (a *Auth) readSession(r *http.Request) (*session, bool) {
	c, err := r.Cookie(a.sessionCookie())
	if err != nil {
		return nil, false
	}
	var s session
	if err := a.session.Decode(a.sessionCookie(), c.Value, &s); err != nil {
		// Tampered, signed with another key, or past its lifetime.
		return nil, false
	}
	now := a.now().Unix()
	if _, ok := a.forges[s.Forge]; !ok || s.Token == "" || now >= s.Expires || s.TokenExpires != 0 && now >= s.TokenExpires && s.Refresh == "" {
		return nil, false
	}
	return &s, true
}

// renewEarly is how long before its token expires a session renews it.
const renewEarly = 5 * time.Minute

type renewed struct {
	session *session
	cookie  *http.Cookie
}

// renew trades a session's refresh token for a new forge token and seals the new session.
func (a *Auth) renew(ctx context.Context, s *session) (renewed, error) {
	p := a.forges[s.Forge]
	if s.Refresh == "" {
		return renewed{}, errors.New("no refresh token")
	}
	tok, err := p.refresh(ctx, s.Refresh)
	if err != nil {
		return renewed{}, err
	}
	fresh := *s
	fresh.Token, fresh.TokenExpires = tok.AccessToken, 0
	if tok.RefreshToken != "" {
		fresh.Refresh = tok.RefreshToken
	}
	if !tok.Expiry.IsZero() {
		fresh.TokenExpires = tok.Expiry.Unix()
	}
	c, err := a.sealSession(&fresh)
	if err != nil {
		return renewed{}, err
	}
	return renewed{session: &fresh, cookie: c}, nil
}

// sealSession is the session cookie holding s, signed and encrypted, living as long as s.
func (a *Auth) sealSession(s *session) (*http.Cookie, error) {
	value, err := a.session.Encode(a.sessionCookie(), s)
	if err != nil {
		return nil, fmt.Errorf("seal the session of %s: %w", s.Login, err)
	}
	return a.cookie(a.sessionCookie(), value, time.Unix(s.Expires, 0).Sub(a.now())), nil
}

// Cookie names: with https the __Host- prefix makes browsers refuse one set by a sibling
// subdomain or over plain http.
func (a *Auth) sessionCookie() string { return a.cookieName("kubeplan-session") }
func (a *Auth) stateCookie() string   { return a.cookieName("kubeplan-signin") }

func (a *Auth) cookieName(n string) string {
	if a.secure {
		return "__Host-" + n
	}
	return n
}

// CheckListen refuses a web page without sign-in on anything but loopback: without sign-in
// the page shows every repository's history to whoever reaches it.
func CheckListen(listen string, signIn bool) error {
	if signIn {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("ui listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("the web page would listen on %q without sign-in, showing every repository's history to anyone who reaches it: "+
		"listen on loopback only (127.0.0.1:8080, [::1]:8080 or localhost:8080) or configure sign-in "+
		"(ui.publicURL, ui.github.clientID or ui.gitlab.applicationID with their secrets, KUBEPLAN_UI_SESSION_KEY)", listen)
}
