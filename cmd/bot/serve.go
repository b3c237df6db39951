package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/doctor"
	"github.com/kubeplan/kubeplan/server"
)

func newServeCommand() *cobra.Command {
	var configFile, listen, state string
	var logJSON bool
	var debugListen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the webhook service that plans pull requests",
		Long: `Run kubeplan as a service: GitHub webhooks on /webhooks/github, GitLab webhooks on
/webhooks/gitlab, health on /healthz and /readyz.

Configuration: an optional YAML file (--config), then environment variables for secrets
(KUBEPLAN_GITHUB_TOKEN, KUBEPLAN_GITHUB_WEBHOOK_SECRET, KUBEPLAN_GITHUB_PRIVATE_KEY,
KUBEPLAN_GITLAB_TOKEN, KUBEPLAN_GITLAB_WEBHOOK_SECRET), then flags. See docs/configuration.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configFile, os.Getenv)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("listen") {
				cfg.Listen = listen
			}
			if cmd.Flags().Changed("state") {
				cfg.State = state
			}
			var handler slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			if logJSON {
				handler = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
			}
			log := slog.New(handler)
			if debugListen != "" {
				go serveDebug(debugListen, log)
			}
			return serve(cmd.Context(), cfg, log)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "YAML configuration file")
	cmd.Flags().StringVar(&listen, "listen", config.Default().Listen, "HTTP listen address")
	cmd.Flags().StringVar(&state, "state", config.Default().State, "state store: an SQLite file, or a postgres:// URL shared by several replicas")
	cmd.Flags().BoolVar(&logJSON, "log-json", false, "log JSON lines instead of text")
	cmd.Flags().StringVar(&debugListen, "debug-listen", "", "serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060); off by default")
	return cmd
}

// tuneGC trades heap for latency in the long-running service: plans allocate heavily, and
// frequent collections delay webhook acknowledgements. GOGC and GOMEMLIMIT, when set, win.
func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: past it the collector runs as often as needed, whatever GOGC says.
		debug.SetMemoryLimit(768 << 20)
	}
	log.Debug("garbage collector tuned", "gcPercent", os.Getenv("GOGC"), "memoryLimit", os.Getenv("GOMEMLIMIT"))
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	tuneGC(log)
	s, err := server.New(ctx, cfg, log, server.Version(buildVersion()))
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second}
	servers := []*http.Server{srv}
	serveErr := make(chan error, 2)
	// The history page on a listener of its own (ui.listen), e.g. loopback only.
	if h := s.UIHandler(); h != nil {
		uiLn, err := net.Listen("tcp", cfg.UI.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (ui.listen): %w", cfg.UI.Listen, err)
		}
		uiSrv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second}
		servers = append(servers, uiSrv)
		go func() { serveErr <- uiSrv.Serve(uiLn) }()
		log.Info("history page serving", "listen", uiLn.Addr().String(), "path", "/ui/")
	} else if cfg.UI.Enabled {
		log.Info("history page serving", "listen", ln.Addr().String(), "path", "/ui/")
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	workersDone := make(chan struct{})
	go func() { s.Run(workCtx); close(workersDone) }()
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("kubeplan serving", "listen", ln.Addr().String(), "version", buildVersion())
	go logChecks(ctx, cfg, log)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		for _, srv := range servers {
			_ = srv.Close()
		}
		stopWork()
		<-workersDone
		return err
	}
	log.Info("shutting down: no new webhooks; running jobs may finish, those still running then are handed back to the queue",
		"grace", cfg.ShutdownGrace.Duration)
	// Webhook answers take milliseconds: a few seconds let those in flight be queued.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("http shutdown", "err", err)
		}
	}
	stopWork()
	<-workersDone
	log.Info("stopped")
	return nil
}

// logChecks runs kubeplan doctor's checks once at start and logs each: a failure is a warning
// that says what to fix, and serving goes on (a cluster down now may be back for the next plan).
func logChecks(ctx context.Context, cfg config.Config, log *slog.Logger) {
	failed := 0
	for _, r := range doctor.Run(ctx, cfg, doctor.Options{}) {
		if ctx.Err() != nil {
			return
		}
		if r.OK {
			log.Info("check passed", "subject", r.Subject, "result", r.Message)
		} else {
			failed++
			log.Warn("check failed", "subject", r.Subject, "problem", r.Message, "fix", r.Fix)
		}
	}
	log.Info("start-up checks done (kubeplan doctor runs them on demand)", "failed", failed)
}

// serveDebug exposes net/http/pprof on its own listener, never on the webhook port.
func serveDebug(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("debug listener", "listen", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Error("debug listener", "err", err)
	}
}
