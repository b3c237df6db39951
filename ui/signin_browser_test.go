package ui

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/internal/browsertest"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/store"
	"github.com/kubeplan/kubeplan/webauth"
)

// signedIn is webauth as kubeplan serve hands it to the page (server's uiAuth).
type signedIn struct{ *webauth.Auth }

func (a signedIn) Readable(ctx context.Context, keys []string) ([]string, error) {
	u, ok := webauth.UserFrom(ctx)
	if !ok {
		return nil, nil
	}
	return a.Auth.Readable(ctx, u, keys)
}

func (a signedIn) SignedIn(ctx context.Context) (string, bool) {
	u, ok := webauth.UserFrom(ctx)
	return u.Login, ok && u.Forge != webauth.LocalForge
}

// Alice reads acme/shop on GitHub, not acme/vault. In a real browser she opens the page, is
// sent to sign in, signs in through GitHub's OAuth pages (the emulator's), comes back to the
// overview and sees the lock bob holds and his apply, opens the apply and the object's
// timeline, and sees nothing of acme/vault anywhere; she signs out and the history is gone.
// No page writes to the console.
func TestHistoryPageSignInInBrowser(t *testing.T) {
	f := newFixture(t)
	b := browsertest.New(t)
	emu := forgeemu.New("kubeplan-token", "kubeplan[bot]")
	t.Cleanup(emu.Close)
	emu.CreateRepo("acme/shop", map[string]string{"web/deploy.yaml": "kind: Deployment"})
	emu.CreateRepo("acme/vault", map[string]string{"vault/sts.yaml": "kind: StatefulSet"})
	emu.SetPermission("acme/shop", "alice", forge.PermRead)
	emu.SignInBrowser("alice") // alice is signed in to GitHub in this browser

	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)
	emu.RegisterOAuthApp("github", forgeemu.OAuthApp{ClientID: "Iv23.kubeplan", ClientSecret: "github-client-secret", GitHubApp: true,
		CallbackURL: app.URL + "/ui/oauth/github/callback"})
	q, err := store.Open(context.Background(), f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	auth, err := webauth.New(webauth.Config{PublicURL: app.URL, SessionKey: []byte(strings.Repeat("s", 32)),
		GitHub: &webauth.OAuthApp{ClientID: "Iv23.kubeplan", ClientSecret: "github-client-secret"}},
		webauth.ForgeURLs{GitHub: emu.GitHubAPI()}, q.Nonces(), log)
	if err != nil {
		t.Fatal(err)
	}
	page, err := New(Options{Store: q.State(), Auth: signedIn{auth}, Version: "kubeplan v9.9.9-test", Log: log,
		Now: func() time.Time { return t0.Add(4 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	page.Routes(mux, auth.Routes)
	apply := f.entry(t, history.Apply, shop)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	body := func() string {
		t.Helper()
		s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	b.Run("open the page, not signed in", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(app.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`a[href^="/ui/login/github"]`)))
	b.Screenshot("sign-in-choice")
	b.Run("sign in with GitHub", chromedp.Click(chromedp.CSS(`a[href^="/ui/login/github"]`)),
		chromedp.WaitVisible(chromedp.CSS(`td[data-label="Lock"] .badge.warn`)))
	if loc, _ := chromedp.Run(b.Ctx, chromedp.Location()); loc != app.URL+"/ui/" {
		t.Errorf("after sign-in the browser is at %s, want the overview it asked for", loc)
	}
	if got := text("#user"); got != "alice" {
		t.Errorf("signed in as %q", got)
	}
	if got := text("#version"); got != "kubeplan v9.9.9-test" {
		t.Errorf("version for a signed-in user: %q", got)
	}
	if got := text(`td[data-label="Lock"]`); !strings.Contains(got, "locked by bob for #12") {
		t.Errorf("lock cell says %q", got)
	}
	if got := text(`ol.entries li:has(a[href="` + seqPath("/ui/entries/", apply) + `"])`); !strings.Contains(got, "1 created, 1 configured") {
		t.Errorf("recent applies say %q", got)
	}
	if s := body(); strings.Contains(s, "vault") || strings.Contains(s, "dave") {
		t.Errorf("alice sees acme/vault, which she cannot read:\n%s", s)
	}
	b.Screenshot("overview-signed-in")

	b.Run("open the apply", chromedp.Click(chromedp.CSS(`ol.entries a[href="`+seqPath("/ui/entries/", apply)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("dl.facts")))
	if got := text("dl.facts"); !strings.Contains(got, "alice on 0a1b2c3d4e5f") || !strings.Contains(got, "allowed") {
		t.Errorf("entry facts %q, want the approval and the verdict", got)
	}
	b.Run("open the object's timeline", chromedp.Click(chromedp.CSS(`.objsec h3 a[href*="kind=Deployment"]`)),
		chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
	if n, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll("ol.timeline > li").length`)); n != 3 {
		t.Errorf("timeline shows %d changes, want 3", n)
	}
	b.Screenshot("timeline-signed-in")

	vault := f.entry(t, history.Rollout, vault)
	b.Run("open an entry of acme/vault by its address", chromedp.Navigate(app.URL+seqPath("/ui/entries/", vault)),
		chromedp.WaitVisible(chromedp.CSS("#problem")))
	if s := body(); !strings.Contains(s, "There is no such entry") || strings.Contains(s, "vault-secret-store") {
		t.Errorf("alice opened an entry of acme/vault:\n%s", s)
	}
	b.Run("sign out", chromedp.Click(chromedp.CSS(`form.signout button`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href^="/ui/login/github"]`)))
	b.Run("open the page again", chromedp.Navigate(app.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`a[href^="/ui/login/github"]`)))
	if s := body(); strings.Contains(s, "acme/shop") {
		t.Errorf("signed out, the page still shows the history:\n%s", s)
	}
	// The 404 above is the browser's to log; nothing else may be.
	for _, m := range b.Console() {
		if !strings.Contains(m.Text, "404") || !strings.HasSuffix(m.URL, seqPath("/ui/entries/", vault)) {
			t.Errorf("browser console: %s (%s:%d)", m, m.URL, m.Line)
		}
	}
}
