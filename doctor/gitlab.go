package doctor

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge/forgehttp"
)

const glSubject = "gitlab"

// GitLabScope is the token scope kubeplan needs, and GitLabAccess the role on each project:
// Developer may set commit statuses and comment on merge requests.
const (
	GitLabScope  = "api"
	GitLabAccess = gl.DeveloperPermissions
)

var roleNames = map[gl.AccessLevelValue]string{gl.NoPermissions: "no role", gl.GuestPermissions: "Guest", gl.ReporterPermissions: "Reporter",
	gl.DeveloperPermissions: "Developer", gl.MaintainerPermissions: "Maintainer", gl.OwnerPermissions: "Owner"}

func checkGitLab(ctx context.Context, cfg config.Config, o forgehttp.Options) []Result {
	api := cfg.GitLab.BaseURL
	if api == "" {
		api = "https://gitlab.com/api/v4"
	}
	rt, err := forgehttp.Transport(api, o)
	if err != nil {
		return []Result{fail(glSubject, "set gitlab.baseURL to https://HOST/api/v4", "%v", err)}
	}
	opts := []gl.ClientOptionFunc{gl.WithoutRetries(), gl.WithHTTPClient(&http.Client{Transport: rt})}
	if cfg.GitLab.BaseURL != "" {
		opts = append(opts, gl.WithBaseURL(cfg.GitLab.BaseURL))
	}
	client, err := gl.NewClient(cfg.GitLab.Token, opts...)
	if err != nil {
		return []Result{fail(glSubject, "set gitlab.baseURL to https://HOST/api/v4", "%v", err)}
	}
	user, _, err := client.Users.CurrentUser(gl.WithContext(ctx))
	if err != nil {
		return []Result{fail(glSubject, "set KUBEPLAN_GITLAB_TOKEN to a valid token of kubeplan's user (docs/forges.md)", "the token does not authenticate: %v", err)}
	}
	out := []Result{ok(glSubject, "the token authenticates as %s", user.Username)}
	// GitLab 15.5 and later tell a token its own scopes; older ones answer 404 and are skipped.
	if tok, _, err := client.PersonalAccessTokens.GetSinglePersonalAccessToken(gl.WithContext(ctx)); err == nil {
		if !slices.Contains(tok.Scopes, GitLabScope) {
			out = append(out, fail(glSubject, "create a token with the scope api and set KUBEPLAN_GITLAB_TOKEN to it",
				"the token lacks the scope api (has %s)", strings.Join(tok.Scopes, ", ")))
		} else {
			out = append(out, ok(glSubject, "the token has the scope api"))
		}
	}
	repos, _ := allowlist(cfg.Repositories)
	for _, repo := range repos {
		p, resp, err := client.Projects.GetProject(repo, nil, gl.WithContext(ctx))
		fix := fmt.Sprintf("make %s a Developer (at least) of %s", user.Username, repo)
		switch {
		case resp != nil && resp.StatusCode == http.StatusNotFound:
			out = append(out, fail(glSubject, fix, "the token has no access to %s", repo))
			continue
		case err != nil:
			out = append(out, fail(glSubject, "check that GitLab is reachable", "read %s: %v", repo, err))
			continue
		}
		level := gl.NoPermissions
		if p.Permissions != nil && p.Permissions.ProjectAccess != nil {
			level = p.Permissions.ProjectAccess.AccessLevel
		}
		if p.Permissions != nil && p.Permissions.GroupAccess != nil && p.Permissions.GroupAccess.AccessLevel > level {
			level = p.Permissions.GroupAccess.AccessLevel
		}
		if level < GitLabAccess {
			out = append(out, fail(glSubject, fix, "%s is %s of %s: kubeplan needs Developer (commit statuses)", user.Username, roleNames[level], repo))
		} else {
			out = append(out, ok(glSubject, "%s is %s of %s", user.Username, roleNames[level], repo))
		}
	}
	return out
}
