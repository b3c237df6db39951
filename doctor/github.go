package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v60/github"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge/forgehttp"
	ghforge "github.com/kubeplan/kubeplan/forge/github"
)

const ghSubject = "github"

func githubClient(cfg config.Config, rt http.RoundTripper) (*gh.Client, error) {
	client := gh.NewClient(&http.Client{Transport: rt})
	if cfg.GitHub.BaseURL == "" {
		return client, nil
	}
	return client.WithEnterpriseURLs(cfg.GitHub.BaseURL, cfg.GitHub.BaseURL)
}

func githubBase(cfg config.Config, o forgehttp.Options) (http.RoundTripper, string, error) {
	api := cfg.GitHub.BaseURL
	if api == "" {
		api = "https://api.github.com/"
	}
	web, err := ghforge.WebURL(cfg.GitHub.BaseURL)
	if err != nil {
		return nil, "", err
	}
	base, err := forgehttp.Transport(api, o)
	return base, web, err
}

func checkGitHub(ctx context.Context, cfg config.Config, o forgehttp.Options) []Result {
	base, web, err := githubBase(cfg, o)
	if err != nil {
		return []Result{fail(ghSubject, "set github.baseURL to https://HOST/api/v3/ (Enterprise Server) or leave it empty", "%v", err)}
	}
	if cfg.GitHub.AppID != 0 {
		return checkGitHubApp(ctx, cfg, base, web)
	}
	return checkGitHubToken(ctx, cfg, base)
}

// checkGitHubApp authenticates as the App, then checks that it is installed where the allowlist
// says and that each installation grants every permission and event kubeplan needs.
func checkGitHubApp(ctx context.Context, cfg config.Config, base http.RoundTripper, web string) []Result {
	keyFix := "check github.appID and the private key (github.privateKeyFile or KUBEPLAN_GITHUB_PRIVATE_KEY): generate a new key in the App's settings"
	if len(cfg.GitHub.PrivateKey) == 0 {
		return []Result{fail(ghSubject, keyFix, "App %d has no private key", cfg.GitHub.AppID)}
	}
	apps, err := ghinstallation.NewAppsTransport(base, cfg.GitHub.AppID, cfg.GitHub.PrivateKey)
	if err != nil {
		return []Result{fail(ghSubject, keyFix, "App %d: the private key does not load: %v", cfg.GitHub.AppID, err)}
	}
	client, err := githubClient(cfg, apps)
	if err != nil {
		return []Result{fail(ghSubject, "set github.baseURL to https://HOST/api/v3/", "%v", err)}
	}
	app, _, err := client.Apps.Get(ctx, "")
	if err != nil {
		return []Result{fail(ghSubject, keyFix, "App %d does not authenticate: %v", cfg.GitHub.AppID, err)}
	}
	slug := app.GetSlug()
	install := fmt.Sprintf("install the App: %sapps/%s/installations/new", web, slug)
	out := []Result{ok(ghSubject, "App %d (%s) authenticates", app.GetID(), slug)}

	// Each installation is judged once, under the first repository or account that led to it.
	judged := map[int64]bool{}
	judge := func(where string, inst *gh.Installation) {
		if judged[inst.GetID()] {
			return
		}
		judged[inst.GetID()] = true
		out = append(out, installationGrants(where, inst, web, slug))
	}
	repos, owners := allowlist(cfg.Repositories)
	for _, repo := range repos {
		owner, name, _ := strings.Cut(repo, "/")
		inst, resp, err := client.Apps.FindRepositoryInstallation(ctx, owner, name)
		switch {
		case resp != nil && resp.StatusCode == http.StatusNotFound:
			out = append(out, fail(ghSubject, install+" and give it "+repo,
				"App %s has no access to %s (not installed there, or the repository is not among the installation's selected repositories)", slug, repo))
		case err != nil:
			out = append(out, fail(ghSubject, "check that GitHub is reachable", "installation of App %s on %s: %v", slug, repo, err))
		default:
			judge(repo, inst)
		}
	}
	for _, owner := range owners {
		inst, resp, err := client.Apps.FindOrganizationInstallation(ctx, owner)
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			inst, resp, err = client.Apps.FindUserInstallation(ctx, owner)
		}
		switch {
		case resp != nil && resp.StatusCode == http.StatusNotFound:
			out = append(out, fail(ghSubject, install+" on "+owner, "App %s is not installed on %s (allowlist %s/*)", slug, owner, owner))
		case err != nil:
			out = append(out, fail(ghSubject, "check that GitHub is reachable", "installation of App %s on %s: %v", slug, owner, err))
		default:
			judge(owner, inst)
		}
	}
	if len(cfg.Repositories) == 0 {
		list, _, err := client.Apps.ListInstallations(ctx, &gh.ListOptions{PerPage: 100})
		switch {
		case err != nil:
			out = append(out, fail(ghSubject, "check that GitHub is reachable", "list the installations of App %s: %v", slug, err))
		case len(list) == 0:
			out = append(out, fail(ghSubject, install, "App %s is installed nowhere: no repository can use kubeplan", slug))
		}
		for _, inst := range list {
			judge(inst.GetAccount().GetLogin(), inst)
		}
	}
	return out
}

// installationGrants compares what an installation granted with what kubeplan needs.
func installationGrants(where string, inst *gh.Installation, web, slug string) Result {
	granted := map[string]string{}
	if inst.Permissions != nil {
		raw, _ := json.Marshal(inst.Permissions)
		_ = json.Unmarshal(raw, &granted)
	}
	var missing []string
	for name, level := range ghforge.AppPermissions() {
		// A personal account has no members to read: team rules need an organization.
		if name == "members" && inst.GetTargetType() == "User" {
			continue
		}
		if !ghforge.PermissionCovers(granted[name], level) {
			has := granted[name]
			if has == "" {
				has = "none"
			}
			missing = append(missing, fmt.Sprintf("%s: %s (has %s)", name, level, has))
		}
	}
	sort.Strings(missing)
	events := map[string]bool{}
	for _, e := range inst.Events {
		events[e] = true
	}
	var missingEvents []string
	for _, e := range ghforge.AppEvents() {
		if !events[e] {
			missingEvents = append(missingEvents, e)
		}
	}
	account := inst.GetAccount().GetLogin()
	if len(missing) == 0 && len(missingEvents) == 0 {
		return ok(ghSubject, "installation %d on %s grants every permission and event kubeplan needs (%s)", inst.GetID(), account, where)
	}
	var what []string
	if len(missing) > 0 {
		what = append(what, "permissions "+strings.Join(missing, ", "))
	}
	if len(missingEvents) > 0 {
		what = append(what, "events "+strings.Join(missingEvents, ", "))
	}
	settings := fmt.Sprintf("%ssettings/apps/%s/permissions", web, slug)
	if inst.GetTargetType() == "Organization" && account != "" {
		settings = fmt.Sprintf("%sorganizations/%s/settings/apps/%s/permissions", web, account, slug)
	}
	return fail(ghSubject, "add them in the App's settings ("+settings+") and accept the new permissions on the installation (docs/forges.md)",
		"installation %d on %s (%s) lacks %s", inst.GetID(), account, where, strings.Join(what, "; "))
}

type bearer struct {
	base  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// checkGitHubToken authenticates with the token, checks a classic token's scopes, and that its
// user may write to each allowed repository (commit statuses need write access).
func checkGitHubToken(ctx context.Context, cfg config.Config, base http.RoundTripper) []Result {
	client, err := githubClient(cfg, bearer{base: base, token: cfg.GitHub.Token})
	if err != nil {
		return []Result{fail(ghSubject, "set github.baseURL to https://HOST/api/v3/", "%v", err)}
	}
	user, resp, err := client.Users.Get(ctx, "")
	if err != nil {
		return []Result{fail(ghSubject, "set KUBEPLAN_GITHUB_TOKEN to a valid token of kubeplan's user (docs/forges.md)", "the token does not authenticate: %v", err)}
	}
	login := user.GetLogin()
	out := []Result{ok(ghSubject, "the token authenticates as %s", login)}
	if header := resp.Header.Get("X-OAuth-Scopes"); resp.Header.Values("X-OAuth-Scopes") != nil {
		have := map[string]bool{}
		for _, s := range strings.Split(header, ",") {
			have[strings.TrimSpace(s)] = true
		}
		var missing []string
		for _, s := range ghforge.TokenScopes() {
			if !have[s] {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			out = append(out, fail(ghSubject, "create a token with the scopes "+strings.Join(ghforge.TokenScopes(), ", ")+" and set KUBEPLAN_GITHUB_TOKEN to it",
				"the token lacks the scope %s (has %q)", strings.Join(missing, ", "), header))
		} else {
			out = append(out, ok(ghSubject, "the token has the scopes %s", strings.Join(ghforge.TokenScopes(), ", ")))
		}
	}
	repos, _ := allowlist(cfg.Repositories)
	for _, repo := range repos {
		owner, name, _ := strings.Cut(repo, "/")
		r, resp, err := client.Repositories.Get(ctx, owner, name)
		var gerr *gh.ErrorResponse
		switch {
		case resp != nil && resp.StatusCode == http.StatusNotFound:
			out = append(out, fail(ghSubject, fmt.Sprintf("give %s write access to %s (and a fine-grained token access to it)", login, repo),
				"the token has no access to %s", repo))
		case err != nil && !errors.As(err, &gerr):
			out = append(out, fail(ghSubject, "check that GitHub is reachable", "read %s: %v", repo, err))
		case err != nil:
			out = append(out, fail(ghSubject, "check the token", "read %s: %v", repo, err))
		case !r.GetPermissions()["push"]:
			out = append(out, fail(ghSubject, fmt.Sprintf("give %s write access to %s", login, repo),
				"%s has only read access to %s: kubeplan needs write (commit statuses)", login, repo))
		default:
			out = append(out, ok(ghSubject, "%s may write to %s", login, repo))
		}
	}
	return out
}
