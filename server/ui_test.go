package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/server"
)

// The history page is off unless ui.enabled; without sign-in it is served on loopback only
// (serve refuses to start otherwise, saying why); on its own listener (ui.listen) or beside the
// webhooks; every answer carries the CSP; /healthz says "ok" and nothing of the build.
func TestHistoryPageIsServedOnlyWhereSafe(t *testing.T) {
	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	for _, tc := range []struct {
		name          string
		enabled       bool
		listen, ui    string
		refused       string // the start-up error, when refused
		onHook, onOwn bool   // where /ui/ is served
	}{
		{name: "off by default", listen: "127.0.0.1:8080"},
		{name: "beside the webhooks on loopback", enabled: true, listen: "127.0.0.1:8080", onHook: true},
		{name: "on its own loopback listener", enabled: true, listen: ":8080", ui: "127.0.0.1:8081", onOwn: true},
		{name: "beside webhooks on every address, no sign-in", enabled: true, listen: ":8080", refused: `would listen on ":8080" without sign-in`},
		{name: "own listener on every address, no sign-in", enabled: true, listen: "127.0.0.1:8080", ui: "0.0.0.0:8081", refused: `would listen on "0.0.0.0:8081" without sign-in`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.State = filepath.Join(t.TempDir(), "state.db")
			cfg.WorkDir = filepath.Join(t.TempDir(), "work")
			cfg.GitHub.BaseURL, cfg.GitHub.Token, cfg.GitHub.WebhookSecret = emu.GitHubAPI(), token, secret
			cfg.Clusters = []cluster.Target{{Name: "prod", Kubeconfig: prod.Kubeconfig, Context: "prod"}}
			cfg.Listen, cfg.UI.Enabled, cfg.UI.Listen = tc.listen, tc.enabled, tc.ui
			s, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler), server.Version("kubeplan v9.9.9-test"))
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), "configure sign-in") {
					t.Fatalf("started: %v; want refused with %q and how to fix it", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			hook := httptest.NewServer(s.Handler())
			t.Cleanup(hook.Close)
			if (s.UIHandler() != nil) != tc.onOwn {
				t.Fatalf("own ui listener: %v, want %v", s.UIHandler() != nil, tc.onOwn)
			}
			served := func(url string) bool {
				resp, err := http.Get(url + "/ui/")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				ok := resp.StatusCode == http.StatusOK && strings.Contains(string(body), "Projects and clusters")
				if ok && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
					t.Errorf("%s/ui/ without the CSP: %v", url, resp.Header)
				}
				return ok
			}
			if got := served(hook.URL); got != tc.onHook {
				t.Errorf("page on the webhook listener: %v, want %v", got, tc.onHook)
			}
			if tc.onOwn {
				own := httptest.NewServer(s.UIHandler())
				t.Cleanup(own.Close)
				if !served(own.URL) {
					t.Error("page not on its own listener")
				}
			}
			resp, err := http.Get(hook.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "ok\n" {
				t.Errorf("/healthz says %q, want only ok", body)
			}
		})
	}
}
