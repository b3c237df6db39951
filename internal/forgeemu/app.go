package forgeemu

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// githubApp is a registered GitHub App: its key verifies the JWTs apps sign, and the
// installation tokens it has minted are accepted on API calls until they expire.
type githubApp struct {
	id     int64
	key    *rsa.PublicKey
	tokens map[string]time.Time // token → expiry
	minted map[int64]int        // installation → tokens minted
	// requests are the bodies of the token requests, as sent.
	requests []string
	// slug names the App (its bot is "<slug>[bot]"); empty: the emulator's BotLogin.
	slug string
	// permissions and events are what the App asks for; its installation grants them unless
	// SetInstallationGrants says otherwise (an owner who has not accepted new permissions).
	permissions map[string]string
	events      []string
	granted     map[string]string
	grantedEv   []string
	// selected, when set, are the only repositories the installation may use.
	selected map[string]bool
}

// EnableGitHubApp registers a GitHub App and returns its private key (PEM), as GitHub does when
// an app is created. Installation tokens are minted at POST /app/installations/{id}/access_tokens.
func (e *Emulator) EnableGitHubApp(appID int64) []byte {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	e.mu.Lock()
	e.app = &githubApp{id: appID, key: &key.PublicKey, tokens: map[string]time.Time{}, minted: map[int64]int{},
		permissions: map[string]string{"contents": "read", "metadata": "read", "pull_requests": "write", "statuses": "write", "issues": "write", "members": "read",
			"merge_queues": "read"},
		events: []string{"pull_request", "issue_comment", "pull_request_review", "merge_group"}}
	e.mu.Unlock()
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// TokensMinted says how many installation tokens an installation received.
func (e *Emulator) TokensMinted(installation int64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.app == nil {
		return 0
	}
	return e.app.minted[installation]
}

// TokenRequestBodies returns the bodies of the installation token requests, as sent.
func (e *Emulator) TokenRequestBodies() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.app == nil {
		return nil
	}
	return append([]string(nil), e.app.requests...)
}

// validToken accepts the configured token or a live installation token. Callers hold e.mu.
func (e *Emulator) validToken(auth string) bool {
	tok := strings.TrimPrefix(strings.TrimPrefix(auth, "Bearer "), "token ")
	if tok == e.Token && tok != "" {
		return true
	}
	if _, ok := e.userOf("github", auth); ok {
		return true
	}
	if e.app != nil {
		if exp, ok := e.app.tokens[tok]; ok && e.now().Before(exp) {
			return true
		}
	}
	return false
}

// mintInstallationToken verifies the app's JWT (RS256, iss = app id, not expired) and mints a
// one-hour installation token.
func (e *Emulator) mintInstallationToken(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.app == nil {
		ghNotFound(w)
		return
	}
	installation, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if installation != InstallationID {
		ghNotFound(w)
		return
	}
	if err := e.verifyJWT(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")); err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "A JSON web token could not be decoded: " + err.Error(), "documentation_url": "https://docs.github.com/rest"})
		return
	}
	// The body is optional; sent, it must be a JSON object (repositories, permissions…), as
	// GitHub's REST description says. A strict GitHub refuses anything else, "null" too.
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	e.app.requests = append(e.app.requests, string(body))
	if len(bytes.TrimSpace(body)) > 0 {
		var v any
		err := json.Unmarshal(body, &v)
		if _, isObject := v.(map[string]any); err != nil || !isObject {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Invalid request.\n\nFor 'links/0/schema', " + strings.TrimSpace(string(body)) + " is not an object.",
				"documentation_url": "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"})
			return
		}
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	token := "ghs_" + base64.RawURLEncoding.EncodeToString(b)
	expires := e.now().Add(time.Hour)
	e.app.tokens[token] = expires
	e.app.minted[installation]++
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "expires_at": expires.UTC().Format(time.RFC3339),
		"permissions": e.app.grants(), "repository_selection": e.app.selection()})
}

func (e *Emulator) verifyJWT(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(e.app.key, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature does not verify")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return err
	}
	var claims struct {
		Iss any   `json:"iss"`
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return err
	}
	if fmt.Sprint(claims.Iss) != strconv.FormatInt(e.app.id, 10) {
		return fmt.Errorf("issuer %v is not app %d", claims.Iss, e.app.id)
	}
	if time.Unix(claims.Exp, 0).Before(e.now()) {
		return fmt.Errorf("'Expiration time' claim ('exp') is in the past")
	}
	return nil
}

// getApp answers GET /app for a request signed as the App: its slug names its bot user.
func (e *Emulator) getApp(w http.ResponseWriter, _ *http.Request) {
	slug := e.app.slug
	if slug == "" {
		slug = strings.TrimSuffix(e.BotLogin, "[bot]")
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": e.app.id, "slug": slug, "name": slug, "owner": e.ghUser("acme"),
		"html_url": e.URL() + "/apps/" + slug, "events": e.app.events, "permissions": e.app.permissions})
}
