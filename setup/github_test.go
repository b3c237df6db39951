package setup_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"

	ghforge "github.com/kubeplan/kubeplan/forge/github"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/setup"
)

var (
	formAction   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	formManifest = regexp.MustCompile(`name="manifest" value="([^"]+)"`)
)

// browser does what the operator's browser does with the start page: loads it, submits its form
// to GitHub, and follows GitHub's redirect back to the loopback callback. It returns the
// callback's answer and the URL GitHub redirected to.
func browser(t *testing.T, start string) (int, string, *url.URL) {
	t.Helper()
	resp, err := http.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action, manifest := formAction.FindStringSubmatch(string(page)), formManifest.FindStringSubmatch(string(page))
	if action == nil || manifest == nil {
		t.Fatalf("the start page has no manifest form:\n%s", page)
	}
	var last *url.URL
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error { last = req.URL; return nil }}
	resp, err = client.PostForm(html.UnescapeString(action[1]), url.Values{"manifest": {html.UnescapeString(manifest[1])}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), last
}

type result struct {
	app *setup.GitHubApp
	err error
}

// create starts the creation in the background and returns the start page's address.
func create(t *testing.T, o setup.GitHubOptions) (string, chan result) {
	t.Helper()
	opened := make(chan string, 1)
	o.Open = func(u string) error { opened <- u; return nil }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	done := make(chan result, 1)
	go func() {
		app, err := setup.CreateGitHubApp(ctx, o)
		done <- result{app, err}
	}()
	select {
	case u := <-opened:
		return u, done
	case r := <-done:
		t.Fatalf("setup ended before opening the browser: %v", r.err)
	}
	return "", nil
}

// An operator creates kubeplan's App on an Enterprise-shaped GitHub (the emulator: API under
// /api/v3/, pages at the root) and gets a key that authenticates as that App.
func TestSetupGitHubCreatesTheAppFromTheManifest(t *testing.T) {
	emu := forgeemu.New("unused", "kubeplan[bot]")
	defer emu.Close()
	emu.CreateRepo("acme/platform", map[string]string{"README.md": "hi"})

	start, done := create(t, setup.GitHubOptions{BaseURL: emu.GitHubAPI(), Org: "acme", Name: "kubeplan-acme",
		WebhookURL: "https://kubeplan.acme.example/webhooks/github"})
	if u, _ := url.Parse(start); !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Fatalf("the callback listens on %s, want 127.0.0.1 only", u.Host)
	}
	// A callback that did not come from this creation is refused, and the creation goes on.
	bad, err := http.Get(start + "callback?state=forged&code=stolen")
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("a callback with a forged state answered %d, want 400", bad.StatusCode)
	}

	status, body, redirected := browser(t, start)
	if status != http.StatusOK || !strings.Contains(body, "you may close this tab") {
		t.Fatalf("callback: %d %s", status, body)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.app.ID == 0 || r.app.Slug != "kubeplan-acme" || r.app.WebhookSecret == "" || !strings.Contains(string(r.app.PrivateKey), "PRIVATE KEY") {
		t.Fatalf("app: %+v", r.app)
	}

	// The manifest went to the organization's page with the permissions and events kubeplan uses.
	ms := emu.AppManifests()
	if len(ms) != 1 || ms[0].Org != "acme" || ms[0].State == "" {
		t.Fatalf("manifests: %+v", ms)
	}
	m := ms[0].Manifest
	perms := map[string]string{}
	for k, v := range m["default_permissions"].(map[string]any) {
		perms[k] = v.(string)
	}
	var events []string
	for _, v := range m["default_events"].([]any) {
		events = append(events, v.(string))
	}
	if !reflect.DeepEqual(perms, ghforge.ManifestPermissions()) || !reflect.DeepEqual(events, ghforge.ManifestEvents()) {
		t.Errorf("manifest asks for %v %v, want %v %v", perms, events, ghforge.ManifestPermissions(), ghforge.ManifestEvents())
	}
	if m["hook_attributes"].(map[string]any)["url"] != "https://kubeplan.acme.example/webhooks/github" ||
		!strings.HasPrefix(m["redirect_url"].(string), "http://127.0.0.1:") {
		t.Errorf("manifest: %v", m)
	}

	// The key is the App's: kubeplan authenticates with it and comments as the App's bot.
	client, err := ghforge.New(ghforge.Config{BaseURL: emu.GitHubAPI(), AppID: r.app.ID, PrivateKey: r.app.PrivateKey}, forgeemu.InstallationID)
	if err != nil {
		t.Fatal(err)
	}
	if self, err := client.Self(context.Background()); err != nil || self != "kubeplan-acme[bot]" {
		t.Fatalf("self with the new key: %q %v", self, err)
	}

	// The callback is single use: replaying GitHub's redirect is refused (the listener is gone
	// or says no), and the code itself cannot be exchanged again.
	if resp, err := http.Get(redirected.String()); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("a replayed callback was accepted")
		}
	}
	code := redirected.Query().Get("code")
	api, _ := gh.NewClient(nil).WithEnterpriseURLs(emu.GitHubAPI(), emu.GitHubAPI())
	if _, resp, err := api.Apps.CompleteAppManifest(context.Background(), code); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("second exchange of the code: %v, want 404", err)
	}
}

// While the creation waits, the same state cannot be delivered twice: the first valid callback
// wins and every later one is refused, whatever code it carries.
func TestSetupGitHubRefusesAReplayedState(t *testing.T) {
	emu := forgeemu.New("unused", "kubeplan[bot]")
	defer emu.Close()
	// GitHub is slow to answer the exchange: the listener is still up while it waits.
	release := emu.HoldRequests(http.MethodPost, "/app-manifests/")
	defer release()
	start, done := create(t, setup.GitHubOptions{BaseURL: emu.GitHubAPI(), WebhookURL: "https://kubeplan.example/webhooks/github"})
	status, _, redirected := browser(t, start)
	if status != http.StatusOK {
		t.Fatalf("callback answered %d", status)
	}
	for emu.Held() == 0 {
		time.Sleep(10 * time.Millisecond) // until the exchange is under way
	}
	replay := *redirected
	q := replay.Query()
	q.Set("code", "another")
	replay.RawQuery = q.Encode()
	resp, err := http.Get(replay.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "already complete") {
		t.Errorf("replayed state answered %d %s, want 400", resp.StatusCode, body)
	}
	release()
	if r := <-done; r.err != nil || r.app.Slug != "kubeplan" {
		t.Fatalf("creation: %+v %v", r.app, r.err)
	}
	if ms := emu.AppManifests(); len(ms) != 1 || ms[0].Org != "" {
		t.Errorf("a personal App is created at /settings/apps/new: %+v", ms)
	}
}

func TestSetupGitHubRefusesNonLoopbackCallbacksAndBadURLs(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    setup.GitHubOptions
		want string
	}{
		{"all interfaces", setup.GitHubOptions{WebhookURL: "https://k.example/webhooks/github", Listen: "0.0.0.0:0"}, "want a loopback IP address"},
		{"a host name", setup.GitHubOptions{WebhookURL: "https://k.example/webhooks/github", Listen: "localhost:0"}, "want a loopback IP address"},
		{"no webhook URL", setup.GitHubOptions{}, "webhook URL is required"},
		{"bad base URL", setup.GitHubOptions{WebhookURL: "https://k.example/webhooks/github", BaseURL: "ghe.example.com"}, "want https://HOST/api/v3/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := setup.CreateGitHubApp(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
