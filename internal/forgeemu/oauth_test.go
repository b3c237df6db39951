package forgeemu

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"
	gl "gitlab.com/gitlab-org/api/client-go"
	"golang.org/x/oauth2"

	"github.com/kubeplan/kubeplan/forge"
)

const callback = "http://kubeplan.example/ui/oauth/%s/callback"

// browser is a cookie jar client that follows the emulator's own redirects and stops at the
// first one leaving it (the application's callback), whose URL it returns.
func browser(t *testing.T, e *Emulator, login string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	if login != "" {
		u, _ := url.Parse(e.URL())
		jar.SetCookies(u, []*http.Cookie{e.BrowserCookie(login)})
	}
	emu, _ := url.Parse(e.URL())
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != emu.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// authorize sends the browser to the authorize URL and returns where the forge sent it back
// (the callback with code and state), or the last page's status when it stayed on the forge.
func authorize(t *testing.T, c *http.Client, authURL string) (*url.URL, int) {
	t.Helper()
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return resp.Request.URL, resp.StatusCode
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return back, resp.StatusCode
}

func oauthConfig(e *Emulator, forgeName, id, secret string, scopes ...string) *oauth2.Config {
	ep := oauth2.Endpoint{AuthURL: e.URL() + "/login/oauth/authorize", TokenURL: e.URL() + "/login/oauth/access_token", AuthStyle: oauth2.AuthStyleInParams}
	if forgeName == "gitlab" {
		ep = oauth2.Endpoint{AuthURL: e.URL() + "/oauth/authorize", TokenURL: e.URL() + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	}
	return &oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: ep, RedirectURL: strings.Replace(callback, "%s", forgeName, 1), Scopes: scopes}
}

func retrieveCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// Alice signs in to an OAuth App with GitHub's web flow (PKCE), and her token sees what she
// may read: acme/app with pull permission, acme/secret not at all, as GitHub hides it.
func TestGitHubOAuthWebFlow(t *testing.T) {
	e := New("tok", "kubeplan[bot]")
	defer e.Close()
	e.CreateRepo("acme/app", map[string]string{"a": "1"})
	e.CreateRepo("acme/secret", map[string]string{"a": "1"})
	e.SetPermission("acme/app", "alice", forge.PermRead)
	e.SetUserName("alice", "Alice Liddell")
	e.RegisterOAuthApp("github", OAuthApp{ClientID: "Iv1.app", ClientSecret: "shh", CallbackURL: strings.Replace(callback, "%s", "github", 1)})
	conf := oauthConfig(e, "github", "Iv1.app", "shh", "repo")
	ctx := context.Background()

	verifier := oauth2.GenerateVerifier()
	back, status := authorize(t, browser(t, e, "alice"), conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	code := back.Query().Get("code")
	if status != http.StatusFound || back.Query().Get("state") != "st4te" || code == "" || !strings.HasPrefix(back.String(), conf.RedirectURL) {
		t.Fatalf("back at %s (%d)", back, status)
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil || !strings.HasPrefix(tok.AccessToken, "gho_") || !tok.Expiry.IsZero() {
		t.Fatalf("token: %+v %v", tok, err)
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); retrieveCode(err) != "bad_verification_code" {
		t.Errorf("the code exchanged twice: %v", err)
	}

	client, _ := gh.NewClient(conf.Client(ctx, tok)).WithEnterpriseURLs(e.GitHubAPI(), e.GitHubAPI())
	me, _, err := client.Users.Get(ctx, "")
	if err != nil || me.GetLogin() != "alice" || me.GetName() != "Alice Liddell" {
		t.Fatalf("GET /user: %+v %v", me, err)
	}
	repo, _, err := client.Repositories.Get(ctx, "acme", "app")
	if err != nil || !repo.GetPermissions()["pull"] || repo.GetPermissions()["push"] {
		t.Errorf("acme/app as alice: %v %v", repo.GetPermissions(), err)
	}
	if _, resp, err := client.Repositories.Get(ctx, "acme", "secret"); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("acme/secret as alice: %v", err)
	}

	// Without the repo scope an OAuth App's token does not see private repositories.
	back, _ = authorize(t, browser(t, e, "alice"), oauthConfig(e, "github", "Iv1.app", "shh").AuthCodeURL("s"))
	noScope, err := oauthConfig(e, "github", "Iv1.app", "shh").Exchange(ctx, back.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	client, _ = gh.NewClient(conf.Client(ctx, noScope)).WithEnterpriseURLs(e.GitHubAPI(), e.GitHubAPI())
	if _, resp, err := client.Repositories.Get(ctx, "acme", "app"); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("acme/app with a token without the repo scope: %v", err)
	}
}

// A GitHub App's user authorization: no scopes, an expiring token with a refresh token, and
// the same view of repositories as the user.
func TestGitHubAppUserAuthorization(t *testing.T) {
	e := New("tok", "kubeplan[bot]")
	defer e.Close()
	e.CreateRepo("acme/app", map[string]string{"a": "1"})
	e.SetPermission("acme/app", "alice", forge.PermWrite)
	e.RegisterOAuthApp("github", OAuthApp{ClientID: "Iv23.app", ClientSecret: "shh", CallbackURL: "http://kubeplan.example/ui/", GitHubApp: true})
	conf := oauthConfig(e, "github", "Iv23.app", "shh")
	ctx := context.Background()
	// A redirect_uri below the registered callback is accepted, as GitHub does.
	back, _ := authorize(t, browser(t, e, "alice"), conf.AuthCodeURL("s"))
	tok, err := conf.Exchange(ctx, back.Query().Get("code"))
	if err != nil || !strings.HasPrefix(tok.AccessToken, "ghu_") || tok.RefreshToken == "" || time.Until(tok.Expiry) < 7*time.Hour {
		t.Fatalf("token: %+v %v", tok, err)
	}
	client, _ := gh.NewClient(conf.Client(ctx, tok)).WithEnterpriseURLs(e.GitHubAPI(), e.GitHubAPI())
	if repo, _, err := client.Repositories.Get(ctx, "acme", "app"); err != nil || !repo.GetPermissions()["push"] {
		t.Errorf("acme/app as alice through the App: %v %v", repo.GetPermissions(), err)
	}
	// The App's token sees no further than the App's installation.
	e.EnableGitHubApp(7)
	e.InstallApp("acme/other")
	if _, resp, err := client.Repositories.Get(ctx, "acme", "app"); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("acme/app outside the App's installation: %v", err)
	}
	// The refresh token renews the token once; spent, it is refused.
	renewed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || !strings.HasPrefix(renewed.AccessToken, "ghu_") || renewed.AccessToken == tok.AccessToken || renewed.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh: %+v %v", renewed, err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); retrieveCode(err) != "bad_refresh_token" {
		t.Errorf("a spent refresh token: %v", err)
	}
}

// GitHub's answers to what goes wrong: unknown clients, foreign callbacks, no one signed in,
// wrong secrets and verifiers, codes past their ten minutes.
func TestGitHubOAuthRefusals(t *testing.T) {
	e := New("tok", "kubeplan[bot]")
	defer e.Close()
	e.RegisterOAuthApp("github", OAuthApp{ClientID: "Iv1.app", ClientSecret: "shh", CallbackURL: strings.Replace(callback, "%s", "github", 1)})
	good := oauthConfig(e, "github", "Iv1.app", "shh")
	ctx := context.Background()

	if _, status := authorize(t, browser(t, e, "alice"), oauthConfig(e, "github", "nope", "shh").AuthCodeURL("s")); status != http.StatusNotFound {
		t.Errorf("unknown client_id: %d, want GitHub's 404 page", status)
	}
	evil := *good
	evil.RedirectURL = "https://evil.example/steal"
	back, _ := authorize(t, browser(t, e, "alice"), evil.AuthCodeURL("s"))
	if q := back.Query(); !strings.HasPrefix(back.String(), good.RedirectURL) || q.Get("error") != "redirect_uri_mismatch" || q.Get("code") != "" || q.Get("state") != "s" {
		t.Errorf("foreign redirect_uri sent the browser to %s", back)
	}
	if where, status := authorize(t, browser(t, e, ""), good.AuthCodeURL("s")); status != http.StatusOK || where.Path != "/login" {
		t.Errorf("nobody signed in: ended at %s (%d), want the sign-in page", where, status)
	}

	verifier := oauth2.GenerateVerifier()
	code := func() string {
		back, _ := authorize(t, browser(t, e, "alice"), good.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		return back.Query().Get("code")
	}
	wrongSecret := *good
	wrongSecret.ClientSecret = "guess"
	if _, err := wrongSecret.Exchange(ctx, code(), oauth2.VerifierOption(verifier)); retrieveCode(err) != "incorrect_client_credentials" {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := good.Exchange(ctx, code(), oauth2.VerifierOption(oauth2.GenerateVerifier())); retrieveCode(err) != "bad_verification_code" {
		t.Errorf("wrong PKCE verifier: %v", err)
	}
	late := code()
	e.mu.Lock()
	e.now = func() time.Time { return time.Now().Add(11 * time.Minute) }
	e.mu.Unlock()
	if _, err := good.Exchange(ctx, late, oauth2.VerifierOption(verifier)); retrieveCode(err) != "bad_verification_code" {
		t.Errorf("a code eleven minutes old: %v", err)
	}
}

// Bob signs in to a GitLab application (PKCE): GitLab's token answer, his user, the project
// he is a Reporter of with its access level, a 404 for the one he is not a member of, the
// refresh grant; a code used twice and a foreign redirect are refused as Doorkeeper does.
func TestGitLabOAuthWebFlow(t *testing.T) {
	e := New("tok", "kubeplan-bot")
	defer e.Close()
	e.CreateRepo("acme/infra/app", map[string]string{"a": "1"})
	e.CreateRepo("acme/infra/secret", map[string]string{"a": "1"})
	e.SetPermission("acme/infra/app", "bob", forge.PermTriage)
	e.RegisterOAuthApp("gitlab", OAuthApp{ClientID: "app-id", ClientSecret: "gloas-shh", CallbackURL: strings.Replace(callback, "%s", "gitlab", 1)})
	conf := oauthConfig(e, "gitlab", "app-id", "gloas-shh", "read_user", "read_api")
	ctx := context.Background()

	verifier := oauth2.GenerateVerifier()
	back, _ := authorize(t, browser(t, e, "bob"), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	code := back.Query().Get("code")
	if back.Query().Get("state") != "st" || code == "" {
		t.Fatalf("back at %s", back)
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil || tok.TokenType != "Bearer" || tok.RefreshToken == "" || time.Until(tok.Expiry) > 2*time.Hour || tok.Extra("created_at") == nil {
		t.Fatalf("token: %+v %v", tok, err)
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); retrieveCode(err) != "invalid_grant" {
		t.Errorf("the code exchanged twice: %v", err)
	}

	client, err := gl.NewAuthSourceClient(gl.OAuthTokenSource{TokenSource: conf.TokenSource(ctx, tok)}, gl.WithBaseURL(e.GitLabAPI()), gl.WithoutRetries())
	if err != nil {
		t.Fatal(err)
	}
	if u, _, err := client.Users.CurrentUser(); err != nil || u.Username != "bob" {
		t.Fatalf("GET /user: %+v %v", u, err)
	}
	p, _, err := client.Projects.GetProject("acme/infra/app", nil)
	if err != nil || p.Visibility != gl.PrivateVisibility || p.Permissions.ProjectAccess.AccessLevel != gl.ReporterPermissions {
		t.Errorf("acme/infra/app as bob: %+v %v", p, err)
	}
	if _, resp, err := client.Projects.GetProject("acme/infra/secret", nil); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("acme/infra/secret as bob: %v", err)
	}

	refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || refreshed.AccessToken == tok.AccessToken || refreshed.AccessToken == "" {
		t.Errorf("refresh: %+v %v", refreshed, err)
	}

	evil := *conf
	evil.RedirectURL = "https://evil.example/steal"
	if where, status := authorize(t, browser(t, e, "bob"), evil.AuthCodeURL("s")); status != http.StatusBadRequest || strings.Contains(where.Host, "evil") {
		t.Errorf("foreign redirect_uri: %s (%d), want GitLab's error page", where, status)
	}
	wide := *conf
	wide.Scopes = []string{"api"}
	if back, _ := authorize(t, browser(t, e, "bob"), wide.AuthCodeURL("s")); back.Query().Get("error") != "invalid_scope" {
		t.Errorf("a scope the application does not have: %s", back)
	}
	if where, _ := authorize(t, browser(t, e, ""), conf.AuthCodeURL("s")); where.Path != "/users/sign_in" {
		t.Errorf("nobody signed in: ended at %s", where)
	}
	wrongSecret := *conf
	wrongSecret.ClientSecret = "guess"
	back, _ = authorize(t, browser(t, e, "bob"), conf.AuthCodeURL("s"))
	if _, err := wrongSecret.Exchange(ctx, back.Query().Get("code")); retrieveCode(err) != "invalid_client" {
		t.Errorf("wrong secret: %v", err)
	}
}
