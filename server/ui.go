package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/kubeplan/kubeplan/ui"
	"github.com/kubeplan/kubeplan/webauth"
)

// Option adds to what New wires.
type Option func(*options)

type options struct {
	version string
}

// Version is kubeplan's build, shown to signed-in users of the history page.
func Version(v string) Option { return func(o *options) { o.version = v } }

// mountUI serves the history page under /ui/ and its API under /api/v1/ when ui.enabled: on
// the webhook listener, or on a mux of its own (UIHandler) when ui.listen names another.
// Without sign-in configured, the page listens on loopback only or not at all.
func (s *Server) mountUI(o options) error {
	if !s.cfg.UI.Enabled {
		return nil
	}
	if err := webauth.CheckListen(s.cfg.UIListen(), s.cfg.UI.SignIn()); err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	auth, err := webauth.New(webauth.FromConfig(s.cfg.UI),
		webauth.ForgeURLsFrom(s.cfg), s.queue.Nonces(), s.log)
	if err != nil {
		return fmt.Errorf("ui sign-in: %w", err)
	}
	page, err := ui.New(ui.Options{Store: s.queue.State(), Auth: uiAuth{auth}, Version: o.version, Log: s.log})
	if err != nil {
		return fmt.Errorf("history page: %w", err)
	}
	mux := s.mux
	if s.cfg.UI.Listen != "" {
		s.uiMux = http.NewServeMux()
		mux = s.uiMux
	}
	page.Routes(mux, auth.Routes)
	return nil
}

// uiAuth is webauth as the page asks it: the user is the request's session's.
type uiAuth struct{ *webauth.Auth }

func (a uiAuth) Readable(ctx context.Context, repoKeys []string) ([]string, error) {
	u, ok := webauth.UserFrom(ctx)
	if !ok {
		return nil, nil // not through Require: nothing
	}
	return a.Auth.Readable(ctx, u, repoKeys)
}

// SignedIn is a user signed in through a forge; the local user of a loopback page without
// sign-in is nobody.
func (a uiAuth) SignedIn(ctx context.Context) (string, bool) {
	u, ok := webauth.UserFrom(ctx)
	if !ok || u.Forge == webauth.LocalForge {
		return "", false
	}
	return u.Login, true
}

// UIHandler serves the history page on its own listener (ui.listen); nil when the page is
// off or shares the webhook listener.
func (s *Server) UIHandler() http.Handler {
	if s.uiMux == nil {
		return nil
	}
	return s.uiMux
}
