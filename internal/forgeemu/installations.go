package forgeemu

import (
	"net/http"
	"sort"
	"strings"
)

// The App's installation (one, InstallationID) as GET /app/installations and the
// /repos/{owner}/{repo}/installation, /orgs/{org}/installation and /users/{user}/installation
// lookups show it, authenticated as the App (JWT): its permissions, events and repositories.

// InstallApp limits the App's installation to these repositories ("selected" on GitHub); its
// tokens then see no other. Without it the installation covers every repository.
func (e *Emulator) InstallApp(repos ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.app.selected = map[string]bool{}
	for _, r := range repos {
		e.app.selected[r] = true
	}
}

// SetInstallationGrants sets what the installation granted, unlike what the App asks for: an
// App whose permissions were raised waits for the owner to accept them.
func (e *Emulator) SetInstallationGrants(permissions map[string]string, events []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.app.granted, e.app.grantedEv = permissions, events
}

func (a *githubApp) grants() map[string]string {
	if a.granted != nil {
		return a.granted
	}
	return a.permissions
}

func (a *githubApp) grantedEvents() []string {
	if a.grantedEv != nil {
		return a.grantedEv
	}
	return a.events
}

func (a *githubApp) selection() string {
	if a.selected != nil {
		return "selected"
	}
	return "all"
}

// covers says whether the installation may use a repository. Callers hold e.mu.
func (e *Emulator) installationCovers(repo string) bool {
	return e.app != nil && (e.app.selected == nil || e.app.selected[repo]) && !e.revoked[repo]
}

// RevokeAccess takes a repository away from kubeplan's credentials (the token's user was
// removed, the App uninstalled from it): GitHub and GitLab then answer 404 for it.
func (e *Emulator) RevokeAccess(repo string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.revoked[repo] = true
}

// installation answers with the installation; callers hold e.mu and checked the JWT.
func (e *Emulator) installationJSON() map[string]any {
	account := "acme"
	names := make([]string, 0, len(e.repos))
	for name := range e.repos {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) > 0 {
		account, _, _ = strings.Cut(names[0], "/")
	}
	return map[string]any{"id": InstallationID, "app_id": e.app.id, "app_slug": e.app.slug, "target_type": "Organization",
		"account": e.ghUser(account), "permissions": e.app.grants(), "events": e.app.grantedEvents(),
		"repository_selection": e.app.selection(), "access_tokens_url": e.URL() + "/api/v3/app/installations/1/access_tokens"}
}

// asApp runs h for a request signed as the App.
func (e *Emulator) asApp(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.app == nil {
			ghNotFound(w)
			return
		}
		if err := e.verifyJWT(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")); err != nil {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "A JSON web token could not be decoded: " + err.Error()})
			return
		}
		h(w, r)
	}
}

func (e *Emulator) installationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /app/installations", e.asApp(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []any{e.installationJSON()})
	}))
	mux.HandleFunc("GET /repos/{owner}/{repo}/installation", e.asApp(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("owner") + "/" + r.PathValue("repo")
		if e.repos[name] == nil || !e.installationCovers(name) {
			ghNotFound(w)
			return
		}
		writeJSON(w, http.StatusOK, e.installationJSON())
	}))
	account := func(w http.ResponseWriter, r *http.Request) {
		owner := r.PathValue("owner")
		for name := range e.repos {
			if strings.HasPrefix(name, owner+"/") && e.installationCovers(name) {
				writeJSON(w, http.StatusOK, e.installationJSON())
				return
			}
		}
		ghNotFound(w)
	}
	mux.HandleFunc("GET /orgs/{owner}/installation", e.asApp(account))
	mux.HandleFunc("GET /users/{owner}/installation", e.asApp(account))
}
