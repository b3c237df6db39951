package webauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	gh "github.com/google/go-github/v60/github"
	gl "gitlab.com/gitlab-org/api/client-go"
	"golang.org/x/oauth2"

	"github.com/kubeplan/kubeplan/forge/forgehttp"
)

// provider is one forge's OAuth endpoints and the calls made with a person's token.
type provider struct {
	name, label string
	oauth       *oauth2.Config
	// web reaches the forge's sign-in host (the token exchange); api its REST API. Both are
	// forgehttp stacks: the person's token goes to the forge's host and nowhere else.
	web    *http.Client
	apiURL string // "" for the public forge's default
	api    http.RoundTripper
}

// newProvider sets up a forge whose API root is base ("" the public forge).
func newProvider(name, base string, app OAuthApp, callback string, opts forgehttp.Options) (*provider, error) {
	var web, api string
	scopes := app.Scopes
	switch name {
	case "github":
		web, api = "https://github.com", "https://api.github.com/"
		if base != "" {
			web, api = strings.TrimSuffix(strings.TrimSuffix(base, "/"), "/api/v3"), base
		}
	case "gitlab":
		web, api = "https://gitlab.com", "https://gitlab.com/api/v4"
		if base != "" {
			web, api = strings.TrimSuffix(strings.TrimSuffix(base, "/"), "/api/v4"), base
		}
		if scopes == nil {
			scopes = []string{"read_user", "read_api"}
		}
	default:
		return nil, fmt.Errorf("webauth: unknown forge %q", name)
	}
	if u, err := url.Parse(web); err != nil || u.Host == "" {
		return nil, fmt.Errorf("webauth: %s URL %q: want an absolute URL", name, base)
	}
	webRT, err := forgehttp.Transport(web, opts)
	if err != nil {
		return nil, fmt.Errorf("webauth: %s: %w", name, err)
	}
	apiRT, err := forgehttp.Transport(api, opts)
	if err != nil {
		return nil, fmt.Errorf("webauth: %s: %w", name, err)
	}
	p := &provider{name: name, label: map[string]string{"github": "GitHub", "gitlab": "GitLab"}[name], web: &http.Client{Transport: webRT},
		api: apiRT, apiURL: base}
	p.oauth = &oauth2.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, RedirectURL: callback, Scopes: scopes}
	if name == "github" {
		p.oauth.Endpoint = oauth2.Endpoint{AuthURL: web + "/login/oauth/authorize", TokenURL: web + "/login/oauth/access_token", AuthStyle: oauth2.AuthStyleInParams}
	} else {
		p.oauth.Endpoint = oauth2.Endpoint{AuthURL: web + "/oauth/authorize", TokenURL: web + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}
	}
	return p, nil
}

// exchange trades the callback's code (and the PKCE verifier) for the person's token.
func (p *provider) exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.web)
	return p.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
}

// refresh trades a refresh token for a new token.
func (p *provider) refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.web)
	tok, err := p.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%s refused to renew the token: %s", p.label, re.ErrorCode) // never the body
		}
		return nil, fmt.Errorf("renew the %s token: %w", p.label, err)
	}
	return tok, nil
}

func (p *provider) bearer(token string) *http.Client {
	return &http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), Base: p.api}}
}

func (p *provider) github(token string) (*gh.Client, error) {
	c := gh.NewClient(p.bearer(token))
	if p.apiURL == "" {
		return c, nil
	}
	c, err := c.WithEnterpriseURLs(p.apiURL, p.apiURL)
	if err != nil {
		return nil, fmt.Errorf("github base URL %q: %w", p.apiURL, err)
	}
	return c, nil
}

func (p *provider) gitlab(token string) (*gl.Client, error) {
	opts := []gl.ClientOptionFunc{gl.WithoutRetries(), gl.WithHTTPClient(&http.Client{Transport: p.api})}
	if p.apiURL != "" {
		opts = append(opts, gl.WithBaseURL(p.apiURL))
	}
	c, err := gl.NewAuthSourceClient(gl.OAuthTokenSource{TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token})}, opts...)
	if err != nil {
		return nil, fmt.Errorf("gitlab client: %w", err)
	}
	return c, nil
}

// user asks the forge who the token belongs to.
func (p *provider) user(ctx context.Context, token string) (User, error) {
	if p.name == "github" {
		c, err := p.github(token)
		if err != nil {
			return User{}, err
		}
		u, _, err := c.Users.Get(ctx, "")
		if err != nil {
			return User{}, fmt.Errorf("ask GitHub who signed in: %w", err)
		}
		return User{Forge: p.name, Login: u.GetLogin(), Name: u.GetName()}, nil
	}
	c, err := p.gitlab(token)
	if err != nil {
		return User{}, err
	}
	u, _, err := c.Users.CurrentUser(gl.WithContext(ctx))
	if err != nil {
		return User{}, fmt.Errorf("ask GitLab who signed in: %w", err)
	}
	return User{Forge: p.name, Login: u.Username, Name: u.Name}, nil
}

// canRead asks the forge, with the person's token, whether they may read repo. Both forges
// answer 404 for a repository the person may not see.
func (p *provider) canRead(ctx context.Context, token, repo string) (bool, error) {
	if p.name == "github" {
		c, err := p.github(token)
		if err != nil {
			return false, err
		}
		owner, name, ok := strings.Cut(repo, "/")
		if !ok {
			return false, nil
		}
		r, resp, err := c.Repositories.Get(ctx, owner, name)
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("ask GitHub whether the user may read %s: %w", repo, err)
		}
		// Without permissions (an anonymous-like answer) only a public repository is readable.
		if perms := r.GetPermissions(); perms != nil {
			return perms["pull"], nil
		}
		return !r.GetPrivate(), nil
	}
	c, err := p.gitlab(token)
	if err != nil {
		return false, err
	}
	pr, resp, err := c.Projects.GetProject(repo, nil, gl.WithContext(ctx))
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ask GitLab whether the user may read %s: %w", repo, err)
	}
	if pr.Visibility != gl.PrivateVisibility {
		return true, nil // public and internal projects' code is readable to every signed-in user
	}
	// A private project's code needs Reporter: a Guest sees the project but not its code.
	level := gl.NoPermissions
	if pr.Permissions != nil {
		if pa := pr.Permissions.ProjectAccess; pa != nil {
			level = max(level, pa.AccessLevel)
		}
		if ga := pr.Permissions.GroupAccess; ga != nil {
			level = max(level, ga.AccessLevel)
		}
	}
	return level >= gl.ReporterPermissions, nil
}

// errNotSignedIn is CanRead's answer for a context without the user's session.
var errNotSignedIn = errors.New("webauth: the request carries no signed-in session")
