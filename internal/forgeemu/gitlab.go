package forgeemu

import "net/http"

// gitlabAPI serves the GitLab REST endpoints kubeplan uses.
func (e *Emulator) gitlabAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not Found"})
	})
}
