package webauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Routes serves the sign-in: GET /ui/login (choose a forge), GET /ui/login/{forge} (off to the
// forge), GET /ui/oauth/{forge}/callback (back from it) and POST /ui/logout.
func (a *Auth) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui/login", a.chooser)
	mux.HandleFunc("GET /ui/login/{forge}", a.login)
	mux.HandleFunc("GET /ui/oauth/{forge}/callback", a.callback)
	mux.HandleFunc("POST /ui/logout", a.logout)
}

// signIn is what the short-lived sign-in cookie holds, encrypted, between the redirect to
// the forge and the callback: the state's hash binds the callback to this browser.
type signIn struct {
	Forge     string `json:"forge"`
	StateHash string `json:"state"`
	Verifier  string `json:"verifier"` // PKCE
	Next      string `json:"next"`
	Expires   int64  `json:"expires"`
}

func (a *Auth) chooser(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if !a.SignInConfigured() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	var forges []choice
	for name, p := range a.forges {
		forges = append(forges, choice{Label: p.label, URL: "/ui/login/" + name + "?next=" + url.QueryEscape(next)})
	}
	sort.Slice(forges, func(i, j int) bool { return forges[i].Label < forges[j].Label })
	a.page(w, http.StatusOK, page{Title: "Sign in to kubeplan", Choices: forges})
}

type choice struct{ Label, URL string }

func (a *Auth) login(w http.ResponseWriter, r *http.Request) {
	p := a.forges[r.PathValue("forge")]
	if p == nil {
		a.page(w, http.StatusNotFound, page{Title: "Not found", Message: "Sign-in through this forge is not configured here.", Again: true})
		return
	}
	state := rand.Text()
	verifier := oauth2.GenerateVerifier()
	expires := a.now().Add(stateLifetime)
	value, err := a.state.Encode(a.stateCookie(), signIn{Forge: p.name, StateHash: hash(state), Verifier: verifier,
		Next: safeNext(r.URL.Query().Get("next")), Expires: expires.Unix()})
	if err != nil {
		a.log.Error("ui sign-in could not start", "forge", p.name, "err", err)
		a.page(w, http.StatusInternalServerError, page{Title: "Sign-in failed", Message: "The sign-in could not start.", Again: true})
		return
	}
	http.SetCookie(w, a.cookie(a.stateCookie(), value, stateLifetime))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (a *Auth) callback(w http.ResponseWriter, r *http.Request) {
	p := a.forges[r.PathValue("forge")]
	if p == nil {
		a.page(w, http.StatusNotFound, page{Title: "Not found", Message: "Sign-in through this forge is not configured here.", Again: true})
		return
	}
	// The code in this URL must not travel on in a Referer.
	w.Header().Set("Referrer-Policy", "no-referrer")
	q := r.URL.Query()
	refuse := func(reason, message string) {
		a.log.Warn("ui sign-in refused", "forge", p.name, "reason", reason, "remote", r.RemoteAddr)
		a.page(w, http.StatusBadRequest, page{Title: "Sign-in refused", Message: message, Again: true})
	}
	if e := q.Get("error"); e != "" {
		refuse("the forge answered "+e, p.label+" did not sign you in ("+e+": "+q.Get("error_description")+").")
		return
	}
	var started signIn
	c, err := r.Cookie(a.stateCookie())
	if err == nil {
		err = a.state.Decode(a.stateCookie(), c.Value, &started)
	}
	// The sign-in cookie is spent whatever happens next.
	http.SetCookie(w, a.cookie(a.stateCookie(), "", -1))
	state := q.Get("state")
	switch {
	case err != nil:
		refuse("no sign-in was started in this browser (missing, expired or altered sign-in cookie)",
			"This sign-in was not started in this browser, or took longer than 10 minutes. Please start again.")
		return
	case started.Forge != p.name || a.now().Unix() >= started.Expires:
		refuse("the sign-in cookie is for another forge or expired", "This sign-in expired or was started for another forge. Please start again.")
		return
	case state == "" || subtle.ConstantTimeCompare([]byte(hash(state)), []byte(started.StateHash)) != 1:
		refuse("the state does not match the one this browser was given (forged, or from another browser)",
			"This sign-in link does not belong to this browser's sign-in. Please start again.")
		return
	}
	first, err := a.once.UseOnce(r.Context(), "oauth-state:"+started.StateHash, time.Unix(started.Expires, 0))
	if err != nil {
		a.log.Error("ui sign-in: the state could not be checked", "forge", p.name, "err", err)
		a.page(w, http.StatusServiceUnavailable, page{Title: "Sign-in failed", Message: "The sign-in could not be checked; please try again.", Again: true})
		return
	}
	if !first {
		refuse("the state was used before (a replayed callback)", "This sign-in link was already used. Please start again.")
		return
	}
	tok, err := p.exchange(r.Context(), q.Get("code"), started.Verifier)
	if err != nil {
		var re *oauth2.RetrieveError
		code := "no answer"
		if errors.As(err, &re) {
			code = re.ErrorCode // never the body: a successful-looking body could hold a token
		}
		refuse("the forge refused the code: "+code, p.label+" refused the sign-in ("+code+"). Please start again.")
		return
	}
	u, err := p.user(r.Context(), tok.AccessToken)
	if err != nil {
		a.log.Error("ui sign-in: the forge did not say who signed in", "forge", p.name, "err", err)
		a.page(w, http.StatusBadGateway, page{Title: "Sign-in failed", Message: p.label + " did not say who you are; please try again.", Again: true})
		return
	}
	s := &session{User: u, Token: tok.AccessToken, Refresh: tok.RefreshToken, Expires: a.now().Add(a.cfg.SessionLifetime).Unix()}
	if !tok.Expiry.IsZero() {
		s.TokenExpires = tok.Expiry.Unix()
		if tok.RefreshToken == "" && s.TokenExpires < s.Expires {
			s.Expires = s.TokenExpires // nothing renews the token: the sign-in ends with it
		}
	}
	sealed, err := a.sealSession(s)
	if err != nil {
		a.log.Error("ui sign-in: the session could not be sealed", "forge", p.name, "login", u.Login, "err", err)
		a.page(w, http.StatusInternalServerError, page{Title: "Sign-in failed", Message: "The session could not be created.", Again: true})
		return
	}
	http.SetCookie(w, sealed)
	a.log.Info("ui sign-in", "forge", p.name, "login", u.Login)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, safeNext(started.Next), http.StatusSeeOther)
}

func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && a.SignInConfigured() && !sameOrigin(origin, a.cfg.PublicURL) {
		http.Error(w, "logout from another site refused", http.StatusForbidden)
		return
	}
	if a.SignInConfigured() {
		if s, ok := a.readSession(r); ok {
			a.log.Info("ui sign-out", "forge", s.Forge, "login", s.Login)
		}
		http.SetCookie(w, a.cookie(a.sessionCookie(), "", -1))
	}
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// cookie is one of ours: HttpOnly, Secure on https, SameSite=Lax (the callback is a top-level
// navigation from the forge, which Strict would strip); maxAge < 0 deletes it.
func (a *Auth) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = max(1, int(maxAge/time.Second))
	}
	return c
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// safeNext is where to go after sign-in: a path on this site, never another origin
// ("//evil.example" and "/\evil.example" are other origins to browsers); else /ui/.
func safeNext(next string) string {
	const home = "/ui/"
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\x00\r\n\t") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return home
	}
	return u.RequestURI()
}

func sameOrigin(origin, public string) bool {
	o, err1 := url.Parse(origin)
	p, err2 := url.Parse(public)
	return err1 == nil && err2 == nil && strings.EqualFold(o.Scheme, p.Scheme) && strings.EqualFold(o.Host, p.Host)
}

// page is the sign-in's own small pages (the chooser and refusals); everything is escaped.
type page struct {
	Title, Message string
	Choices        []choice
	Again          bool
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title></head>
<body><main><h1>{{.Title}}</h1>
{{with .Message}}<p>{{.}}</p>{{end}}
{{with .Choices}}<ul>{{range .}}<li><a href="{{.URL}}">Sign in with {{.Label}}</a></li>{{end}}</ul>{{end}}
{{if .Again}}<p><a href="/ui/login">Sign in</a></p>{{end}}
</main></body></html>
`))

func (a *Auth) page(w http.ResponseWriter, status int, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, p); err != nil {
		a.log.Error("ui sign-in page", "err", err)
	}
}
