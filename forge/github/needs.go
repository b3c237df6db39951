package github

import (
	"fmt"
	"net/url"
	"strings"
)

// What kubeplan needs from GitHub, listed once: `kubeplan setup github` asks for it in the App
// manifest, `kubeplan doctor` checks it on every installation, docs/forges.md lists it.

// AppPermissions are the permissions a GitHub App needs, each with what kubeplan uses it for.
// The level is the least kubeplan needs ("read" or "write").
func AppPermissions() map[string]string {
	return map[string]string{
		"contents":      "read",  // archives of a pull request's commits
		"metadata":      "read",  // repositories and collaborators' permissions (roles)
		"pull_requests": "write", // pull requests, their files and reviews; comments on them
		"issues":        "write", // pull-request comments are issue comments; reactions to commands; drift issues
		"statuses":      "write", // kubeplan/plan, kubeplan/policy, kubeplan/apply
		"members":       "read",  // organization: team memberships for approval and role rules
	}
}

// AppEvents are the webhook events kubeplan acts on (webhook.GitHub).
func AppEvents() []string {
	return []string{"pull_request", "pull_request_review", "issue_comment"}
}

// MergeQueuePermissions and MergeQueueEvents are what a repository with a merge queue needs
// besides: kubeplan plans each merge group's commit (workflow/mergegroup.go). `setup github`
// asks for them; `doctor` does not require them, as repositories without a queue do not.
func MergeQueuePermissions() map[string]string { return map[string]string{"merge_queues": "read"} }

// MergeQueueEvents: see MergeQueuePermissions.
func MergeQueueEvents() []string { return []string{"merge_group"} }

// ManifestPermissions and ManifestEvents are what `setup github` asks for: everything above.
func ManifestPermissions() map[string]string {
	out := AppPermissions()
	for k, v := range MergeQueuePermissions() {
		out[k] = v
	}
	return out
}

// ManifestEvents: see ManifestPermissions.
func ManifestEvents() []string { return append(AppEvents(), MergeQueueEvents()...) }

// TokenScopes are the scopes a classic personal access token needs: repo (read the code, comment,
// set statuses) and read:org (team memberships). Fine-grained tokens have no scopes; they need
// the repository permissions of AppPermissions.
func TokenScopes() []string { return []string{"repo", "read:org"} }

// PermissionCovers says whether a granted permission level is at least the needed one
// ("admin" ⊇ "write" ⊇ "read").
func PermissionCovers(granted, needed string) bool {
	rank := map[string]int{"read": 1, "write": 2, "admin": 3}
	return rank[granted] >= rank[needed] && rank[needed] > 0
}

// WebURL is the GitHub web root for an API base URL: https://github.com/ for github.com (""
// or https://api.github.com/), https://HOST/ for Enterprise Server's https://HOST/api/v3/.
func WebURL(apiBase string) (string, error) {
	if apiBase == "" {
		return "https://github.com/", nil
	}
	u, err := url.Parse(apiBase)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("github base URL %q: want https://HOST/api/v3/", apiBase)
	}
	if u.Host == "api.github.com" {
		return "https://github.com/", nil
	}
	path := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v3")
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: path + "/"}).String(), nil
}
