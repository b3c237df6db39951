package forgeemu

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A GitHub App created from a manifest (https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest):
// the operator's browser POSTs a form with a "manifest" field to /settings/apps/new?state=…
// (or /organizations/ORG/settings/apps/new), the operator confirms, and GitHub redirects to the
// manifest's redirect_url with a one-time code and the state; POST
// /app-manifests/{code}/conversions (unauthenticated, within an hour, once) answers the App's
// id, slug, private key, webhook secret and OAuth client credentials.

// AppManifest is a manifest the emulator received, with where it was posted.
type AppManifest struct {
	// Org is the organization the App is created under; empty for a personal account.
	Org   string
	State string
	// Manifest is the JSON the form carried, decoded.
	Manifest map[string]any
}

type manifestCode struct {
	org      string
	manifest map[string]any
	expires  time.Time
}

// AppManifests returns the manifests posted so far, oldest first.
func (e *Emulator) AppManifests() []AppManifest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]AppManifest(nil), e.manifests...)
}

// newAppFromManifest is the "Create GitHub App" page: the emulator confirms at once, as the
// operator clicking the button would, and redirects to the manifest's redirect_url.
func (e *Emulator) newAppFromManifest(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.PostForm.Get("manifest")), &m); err != nil {
		http.Error(w, "Invalid GitHub App configuration: the manifest is not JSON", http.StatusUnprocessableEntity)
		return
	}
	hook, _ := m["hook_attributes"].(map[string]any)
	redirect, _ := m["redirect_url"].(string)
	for field, v := range map[string]any{"url": m["url"], "hook_attributes.url": hook["url"], "redirect_url": redirect} {
		if s, _ := v.(string); s == "" {
			http.Error(w, "Invalid GitHub App configuration: "+html.EscapeString(field)+" is required", http.StatusUnprocessableEntity)
			return
		}
	}
	target, err := url.Parse(redirect)
	if err != nil || target.Scheme == "" {
		http.Error(w, "Invalid GitHub App configuration: redirect_url is not a URL", http.StatusUnprocessableEntity)
		return
	}
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	code := hex.EncodeToString(b)
	state := r.URL.Query().Get("state")
	e.mu.Lock()
	e.manifests = append(e.manifests, AppManifest{Org: r.PathValue("org"), State: state, Manifest: m})
	e.manifestCodes[code] = &manifestCode{org: r.PathValue("org"), manifest: m, expires: e.now().Add(time.Hour)}
	e.mu.Unlock()
	q := target.Query()
	q.Set("code", code)
	if state != "" {
		q.Set("state", state)
	}
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// convertManifest answers POST /app-manifests/{code}/conversions: the code works once, for an
// hour, and creates the App (which then replaces any App registered before).
func (e *Emulator) convertManifest(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	mc := e.manifestCodes[r.PathValue("code")]
	delete(e.manifestCodes, r.PathValue("code"))
	if mc == nil || e.now().After(mc.expires) {
		ghNotFound(w)
		return
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	name, _ := mc.manifest["name"].(string)
	if name == "" {
		name = "app-" + strconv.FormatInt(e.nextID+1, 10)
	}
	slug := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), " ", "-"))
	perms := map[string]string{}
	if p, ok := mc.manifest["default_permissions"].(map[string]any); ok {
		for k, v := range p {
			perms[k], _ = v.(string)
		}
	}
	perms["metadata"] = "read" // every App has it
	var events []string
	if ev, ok := mc.manifest["default_events"].([]any); ok {
		for _, v := range ev {
			s, _ := v.(string)
			events = append(events, s)
		}
	}
	secret := make([]byte, 20)
	_, _ = rand.Read(secret)
	client := make([]byte, 20)
	_, _ = rand.Read(client)
	id := e.id()
	e.app = &githubApp{id: id, key: &key.PublicKey, tokens: map[string]time.Time{}, minted: map[int64]int{}, slug: slug,
		permissions: perms, events: events}
	owner := mc.org
	if owner == "" {
		owner = "octo-operator"
	}
	now := e.now().UTC().Format(time.RFC3339)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": id, "slug": slug, "node_id": "A_emu" + strconv.FormatInt(id, 10), "owner": e.ghUser(owner), "name": name,
		"description": mc.manifest["description"], "external_url": mc.manifest["url"], "html_url": e.URL() + "/apps/" + slug,
		"created_at": now, "updated_at": now, "permissions": perms, "events": events,
		"client_id": "Iv1." + hex.EncodeToString(client[:8]), "client_secret": hex.EncodeToString(client),
		"webhook_secret": hex.EncodeToString(secret),
		"pem":            string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
	})
}
