package forgeemu

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/forge"
)

// OAuthApp is an application people sign in to with their forge account: a GitHub OAuth App
// (or a GitHub App's user authorization) or a GitLab application.
type OAuthApp struct {
	ClientID, ClientSecret string
	// CallbackURL is the registered callback. GitHub accepts a redirect_uri on the same host
	// and port whose path is at or below the callback's; GitLab only the exact URL.
	CallbackURL string
	// GitHubApp makes a GitHub client a GitHub App's: its user tokens (ghu_) carry no scopes,
	// expire after 8 hours with a refresh token, and see what the user sees. Otherwise it is an
	// OAuth App: tokens (gho_) never expire and see private repositories only with "repo".
	GitHubApp bool
	// Scopes are a GitLab application's (default read_user read_api): asking for others is
	// refused with invalid_scope.
	Scopes []string
}

// oauthCode is an authorization code: single-use, ten minutes, for one client and redirect.
type oauthCode struct {
	forge, clientID, redirectURI, login string
	scopes                              []string
	challenge, method                   string
	expires                             time.Time
}

// userToken is a person's token minted through the OAuth flow.
type userToken struct {
	forge, login string
	scopes       []string
	githubApp    bool
	expires      time.Time // zero: never
}

// browserCookie names the emulator's own sign-in cookie: who is at the browser.
const browserCookie = "forgeemu_user"

// RegisterOAuthApp registers an application on forge ("github" or "gitlab").
func (e *Emulator) RegisterOAuthApp(forgeName string, app OAuthApp) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if forgeName == "gitlab" && app.Scopes == nil {
		app.Scopes = []string{"read_user", "read_api"}
	}
	e.oauthApps[forgeName+":"+app.ClientID] = &app
}

// SignInBrowser makes login the person signed in to the forge in any browser that does not
// say otherwise with BrowserCookie; "" signs everyone out.
func (e *Emulator) SignInBrowser(login string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.browserUser = login
	if login != "" {
		e.userID(login)
	}
}

// BrowserCookie is the cookie that says login is signed in to the forge in one browser, for
// a test's cookie jar (set for the emulator's URL).
func (e *Emulator) BrowserCookie(login string) *http.Cookie {
	e.mu.Lock()
	e.userID(login)
	e.mu.Unlock()
	return &http.Cookie{Name: browserCookie, Value: login, Path: "/"}
}

// SetClock makes the emulator read the time from now: tokens and codes expire by it.
func (e *Emulator) SetClock(now func() time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = now
}

// SetUserName gives a person a display name (GitHub's name, GitLab's name).
func (e *Emulator) SetUserName(login, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.userID(login)
	e.userNames[login] = name
}

// OAuthTokens lists the user tokens the OAuth flows have issued, access and refresh.
func (e *Emulator) OAuthTokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for t := range e.userTokens {
		out = append(out, t)
	}
	for t := range e.refreshTokens {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// oauthRoutes are the forges' web sign-in endpoints, on the emulator's root as on the forges.
func (e *Emulator) oauthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login/oauth/authorize", e.githubAuthorize)
	mux.HandleFunc("POST /login/oauth/access_token", e.githubAccessToken)
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { signInPage(w, "GitHub") })
	mux.HandleFunc("GET /oauth/authorize", e.gitlabAuthorize)
	mux.HandleFunc("POST /oauth/token", e.gitlabToken)
	mux.HandleFunc("GET /users/sign_in", func(w http.ResponseWriter, r *http.Request) { signInPage(w, "GitLab") })
}

var signInTemplate = template.Must(template.New("signin").Parse(`<!doctype html><title>Sign in to {{.}}</title><h1>Sign in to {{.}}</h1><form method="post"><input name="login"></form>`))

func signInPage(w http.ResponseWriter, forgeName string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = signInTemplate.Execute(w, forgeName)
}

// browser is who is signed in to the forge in the request's browser. Callers hold e.mu.
func (e *Emulator) browser(r *http.Request) string {
	if c, err := r.Cookie(browserCookie); err == nil && c.Value != "" {
		return c.Value
	}
	return e.browserUser
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redirectWith sends the browser back to the application with query parameters added.
func redirectWith(w http.ResponseWriter, r *http.Request, to string, params url.Values) {
	u, err := url.Parse(to)
	if err != nil {
		http.Error(w, "bad redirect", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, v := range params {
		if len(v) > 0 && v[0] != "" {
			q.Set(k, v[0])
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// githubRedirectOK is GitHub's rule: same scheme, host and port as the callback, and a path
// at or below the callback's.
func githubRedirectOK(callback, redirect string) bool {
	c, err1 := url.Parse(callback)
	r, err2 := url.Parse(redirect)
	if err1 != nil || err2 != nil || c.Scheme != r.Scheme || c.Host != r.Host || strings.Contains(r.Path, "..") {
		return false
	}
	return r.Path == c.Path || strings.HasPrefix(r.Path, strings.TrimSuffix(c.Path, "/")+"/")
}

// githubAuthorize is GET /login/oauth/authorize: an unknown client is a 404 page, a
// mismatched redirect_uri goes back to the registered callback with redirect_uri_mismatch, a
// browser not signed in goes to /login, and a signed-in one (who has authorized the app
// before) back to the application with a code and the state.
func (e *Emulator) githubAuthorize(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := r.URL.Query()
	app := e.oauthApps["github:"+q.Get("client_id")]
	if app == nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<!doctype html><title>Page not found · GitHub</title><h1>404</h1>"))
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		redirect = app.CallbackURL
	}
	if !githubRedirectOK(app.CallbackURL, redirect) {
		redirectWith(w, r, app.CallbackURL, url.Values{"error": {"redirect_uri_mismatch"},
			"error_description": {"The redirect_uri MUST match the registered callback URL for this application."},
			"error_uri":         {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch"},
			"state":             {q.Get("state")}})
		return
	}
	if m := q.Get("code_challenge_method"); q.Get("code_challenge") != "" && m != "S256" {
		redirectWith(w, r, redirect, url.Values{"error": {"invalid_request"}, "error_description": {"code_challenge_method must be S256"}, "state": {q.Get("state")}})
		return
	}
	login := e.browser(r)
	if login == "" {
		http.Redirect(w, r, "/login?"+url.Values{"client_id": {app.ClientID}, "return_to": {r.URL.RequestURI()}}.Encode(), http.StatusFound)
		return
	}
	var scopes []string
	if !app.GitHubApp {
		scopes = strings.FieldsFunc(q.Get("scope"), func(r rune) bool { return r == ' ' || r == ',' })
	}
	code := randomHex(10) // GitHub's codes are 20 hex characters
	e.oauthCodes[code] = &oauthCode{forge: "github", clientID: app.ClientID, redirectURI: redirect, login: login, scopes: scopes,
		challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), expires: e.now().Add(10 * time.Minute)}
	redirectWith(w, r, redirect, url.Values{"code": {code}, "state": {q.Get("state")}})
}

// oauthParams reads a token request's parameters: a form, or a JSON object; client
// credentials in the body or as HTTP Basic authentication.
func oauthParams(r *http.Request) url.Values {
	out := url.Values{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		_ = json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16)).Decode(&m)
		for k, v := range m {
			if s, ok := v.(string); ok {
				out.Set(k, s)
			}
		}
	} else if err := r.ParseForm(); err == nil {
		out = r.Form
	}
	if id, secret, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		out.Set("client_id", id)
		out.Set("client_secret", secret)
	}
	return out
}

// takeCode finds and spends a code: it is gone after one exchange, good or bad, as the forges
// revoke a code presented twice. Callers hold e.mu.
func (e *Emulator) takeCode(forgeName, code, clientID, redirect, verifier string) (*oauthCode, string) {
	c := e.oauthCodes[code]
	if c == nil || c.forge != forgeName || c.clientID != clientID {
		return nil, "code"
	}
	delete(e.oauthCodes, code)
	switch {
	case !e.now().Before(c.expires):
		return nil, "code"
	case redirect != "" && redirect != c.redirectURI || forgeName == "gitlab" && redirect != c.redirectURI:
		return nil, "redirect"
	case c.challenge != "" && !pkceOK(c.challenge, c.method, verifier):
		return nil, "verifier"
	}
	return c, ""
}

func pkceOK(challenge, method, verifier string) bool {
	if method == "plain" {
		return verifier == challenge
	}
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:]) == challenge
}

// githubAccessToken is POST /login/oauth/access_token: a code for a token, or (a GitHub App's)
// a refresh token for a new one. GitHub answers errors with 200 and an
// error field; the answer is form-encoded unless the client accepts JSON.
func (e *Emulator) githubAccessToken(w http.ResponseWriter, r *http.Request) {
	p := oauthParams(r)
	answer := func(v url.Values) {
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			m := map[string]any{}
			for k := range v {
				m[k] = v.Get(k)
			}
			writeJSON(w, http.StatusOK, m)
			return
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = w.Write([]byte(v.Encode()))
	}
	fail := func(code, description, uri string) {
		answer(url.Values{"error": {code}, "error_description": {description},
			"error_uri": {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#" + uri}})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	app := e.oauthApps["github:"+p.Get("client_id")]
	if app == nil || app.ClientSecret != p.Get("client_secret") {
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.", "incorrect-client-credentials")
		return
	}
	var ut *userToken
	switch p.Get("grant_type") {
	case "refresh_token":
		// A GitHub App's user token is renewed with its refresh token, which is then spent.
		old, ok := e.refreshTokens[p.Get("refresh_token")]
		if !ok || old.forge != "github" || !app.GitHubApp {
			fail("bad_refresh_token", "The refresh token passed is incorrect or expired.", "bad-refresh-token")
			return
		}
		delete(e.refreshTokens, p.Get("refresh_token"))
		ut = &userToken{forge: "github", login: old.login, githubApp: true}
	default:
		c, why := e.takeCode("github", p.Get("code"), app.ClientID, p.Get("redirect_uri"), p.Get("code_verifier"))
		switch why {
		case "redirect":
			fail("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.", "redirect-uri-mismatch")
			return
		case "code", "verifier":
			fail("bad_verification_code", "The code passed is incorrect or expired.", "bad-verification-code")
			return
		}
		ut = &userToken{forge: "github", login: c.login, scopes: c.scopes, githubApp: app.GitHubApp}
	}
	v := url.Values{"token_type": {"bearer"}, "scope": {strings.Join(ut.scopes, ",")}}
	if app.GitHubApp {
		ut.expires = e.now().Add(8 * time.Hour)
		refresh := "ghr_" + randomHex(30)
		e.refreshTokens[refresh] = &userToken{forge: "github", login: ut.login, githubApp: true}
		v.Set("expires_in", "28800")
		v.Set("refresh_token", refresh)
		v.Set("refresh_token_expires_in", "15897600")
		v.Set("access_token", "ghu_"+randomHex(18))
	} else {
		v.Set("access_token", "gho_"+randomHex(18))
	}
	e.userTokens[v.Get("access_token")] = ut
	answer(v)
}

// gitlabAuthorize is GET /oauth/authorize (Doorkeeper): an unknown client or a redirect_uri
// not registered is an error page (never a redirect), other errors go back to the
// application, a browser not signed in goes to /users/sign_in.
func (e *Emulator) gitlabAuthorize(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := r.URL.Query()
	errorPage := func(status int, msg string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_ = template.Must(template.New("e").Parse(`<!doctype html><title>An error has occurred</title><h1>An error has occurred</h1><p>{{.}}</p>`)).Execute(w, msg)
	}
	app := e.oauthApps["gitlab:"+q.Get("client_id")]
	if app == nil {
		errorPage(http.StatusUnauthorized, "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.")
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect != app.CallbackURL {
		errorPage(http.StatusBadRequest, "The redirect URI included is not valid.")
		return
	}
	back := func(code, description string) {
		redirectWith(w, r, redirect, url.Values{"error": {code}, "error_description": {description}, "state": {q.Get("state")}})
	}
	if q.Get("response_type") != "code" {
		back("unsupported_response_type", "The authorization server does not support this response type.")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	for _, s := range scopes {
		if !slices.Contains(app.Scopes, s) {
			back("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
			return
		}
	}
	if len(scopes) == 0 {
		scopes = app.Scopes
	}
	if m := q.Get("code_challenge_method"); q.Get("code_challenge") != "" && m != "S256" && m != "plain" {
		back("invalid_request", "The code challenge method must be plain or S256.")
		return
	}
	login := e.browser(r)
	if login == "" {
		http.Redirect(w, r, "/users/sign_in", http.StatusFound)
		return
	}
	code := randomHex(32)
	e.oauthCodes[code] = &oauthCode{forge: "gitlab", clientID: app.ClientID, redirectURI: redirect, login: login, scopes: scopes,
		challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), expires: e.now().Add(10 * time.Minute)}
	redirectWith(w, r, redirect, url.Values{"code": {code}, "state": {q.Get("state")}})
}

// gitlabToken is POST /oauth/token: authorization_code and refresh_token grants, errors as
// Doorkeeper answers them (400 invalid_grant, 401 invalid_client).
func (e *Emulator) gitlabToken(w http.ResponseWriter, r *http.Request) {
	p := oauthParams(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	app := e.oauthApps["gitlab:"+p.Get("client_id")]
	if app == nil || app.ClientSecret != p.Get("client_secret") {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client",
			"error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."})
		return
	}
	invalidGrant := func() {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant",
			"error_description": "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."})
	}
	var login string
	var scopes []string
	switch p.Get("grant_type") {
	case "authorization_code":
		c, why := e.takeCode("gitlab", p.Get("code"), app.ClientID, p.Get("redirect_uri"), p.Get("code_verifier"))
		if why != "" {
			invalidGrant()
			return
		}
		login, scopes = c.login, c.scopes
	case "refresh_token":
		old, ok := e.refreshTokens[p.Get("refresh_token")]
		if !ok || old.forge != "gitlab" {
			invalidGrant()
			return
		}
		delete(e.refreshTokens, p.Get("refresh_token"))
		login, scopes = old.login, old.scopes
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type",
			"error_description": "The authorization grant type is not supported by the authorization server."})
		return
	}
	access, refresh := randomHex(32), randomHex(32)
	e.userTokens[access] = &userToken{forge: "gitlab", login: login, scopes: scopes, expires: e.now().Add(2 * time.Hour)}
	e.refreshTokens[refresh] = &userToken{forge: "gitlab", login: login, scopes: scopes}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 7200,
		"refresh_token": refresh, "scope": strings.Join(scopes, " "), "created_at": e.now().Unix()})
}

// userOf is the live user token in an Authorization header on forge, if it is one. Callers
// hold e.mu.
func (e *Emulator) userOf(forgeName, auth string) (*userToken, bool) {
	tok := strings.TrimPrefix(strings.TrimPrefix(auth, "Bearer "), "token ")
	ut, ok := e.userTokens[tok]
	if !ok || ut.forge != forgeName || !ut.expires.IsZero() && !e.now().Before(ut.expires) {
		return nil, false
	}
	return ut, true
}

// githubSees says whether a user token sees a repository: every repository here is
// private, so the user needs a permission on it, an OAuth App's token the "repo" scope, and a
// GitHub App's token the App installed on it (when the emulator has an App: EnableGitHubApp).
// Callers hold e.mu.
func (e *Emulator) githubSees(ut *userToken, r *Repo) (forge.Permission, bool) {
	p, ok := r.Permissions[ut.login]
	switch {
	case !ok:
		return "", false
	case ut.githubApp && e.app != nil && !e.installationCovers(r.FullName):
		return "", false
	case !ut.githubApp && !slices.Contains(ut.scopes, "repo"):
		return "", false
	}
	return p, true
}

func (ut *userToken) hasScope(any ...string) bool {
	for _, s := range any {
		if slices.Contains(ut.scopes, s) {
			return true
		}
	}
	return false
}
