// Package server assembles `kubeplan serve`: webhook endpoints, the durable queue, the workers
// that run the workflow, and the health endpoints. It is the composition root; each part keeps
// its own job in its own package.
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/archive"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/driftissue"
	"github.com/kubeplan/kubeplan/driftwatch"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/forge/forgehttp"
	ghforge "github.com/kubeplan/kubeplan/forge/github"
	glforge "github.com/kubeplan/kubeplan/forge/gitlab"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/isolate"
	"github.com/kubeplan/kubeplan/metrics"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/store"
	"github.com/kubeplan/kubeplan/webhook"
	"github.com/kubeplan/kubeplan/worker"
	"github.com/kubeplan/kubeplan/workflow"
)

// Server is a running kubeplan service.
type Server struct {
	cfg config.Config
	// githubKey is the App's private key, read once at start (config.Prepare).
	githubKey []byte
	log       *slog.Logger
	queue     *store.Queue
	workers   *worker.Pool
	flow      *workflow.Workflow
	mux       *http.ServeMux
	// uiMux serves the history page on ui.listen; nil when it shares mux (or is off).
	uiMux   *http.ServeMux
	metrics *metrics.Metrics
	// watch runs the scheduled drift checks; nil when drift.interval is 0 or no repository is named.
	watch *driftwatch.Watcher

	// installations are the GitHub App's installations by repository, for drift checks.
	installations sync.Map

	mu     sync.Mutex
	github map[int64]*ghforge.Client // per App installation
	gitlab *glforge.Client
}

// New opens the state store and wires everything; Run starts the workers.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	rt, err := cfg.Prepare()
	if err != nil {
		return nil, err
	}
	reg, err := cfg.Registry()
	if err != nil {
		return nil, err
	}
	if dir := filepath.Dir(cfg.State); dir != "" && !store.IsPostgres(cfg.State) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	q, err := store.Open(ctx, cfg.State)
	if err != nil {
		return nil, err
	}
	q.Lease = cfg.JobTimeout.Duration + cfg.JobTimeout.Duration/2
	q.MaxAttempts, q.RetryBackoff = max(cfg.JobAttempts, 1), cfg.RetryBackoff.Duration
	if n, err := q.RecoverInterrupted(ctx); err != nil {
		q.Close()
		return nil, err
	} else if n > 0 {
		log.Info("jobs interrupted by the last shutdown are queued again (those whose attempts are used up, to be given up)", "jobs", n)
	}
	if len(cfg.Repositories) == 0 && len(cfg.Access) == 0 {
		log.Warn("no repositories allowlist and no access rules: every repository that sends a webhook may deploy to every namespace of every cluster")
	}
	s := &Server{cfg: cfg, githubKey: rt.GitHubPrivateKey, log: log, queue: q, github: map[int64]*ghforge.Client{}}
	dryRuns := planner.NewDryRunCache(planner.CacheLimits{}) // shared by pull requests' plans and drift checks
	s.flow = &workflow.Workflow{
		Forges:        s.forgeFor,
		Clusters:      cluster.NewPool(reg, cluster.DefaultTuning()),
		Planner:       planner.New(planner.Options{Cache: dryRuns}),
		Applier:       applier.New(applier.Options{}),
		Checkouts:     archive.NewCache(filepath.Join(cfg.WorkDir, "checkouts"), int64(cfg.CheckoutCacheMB)<<20),
		State:         q.State(),
		Policy:        rt.Policy,
		Access:        cfg.Access,
		HealthTimeout: rt.HealthTimeout,
		Render: (&isolate.Renderer{Limits: isolate.Limits{Timeout: cfg.Render.Timeout.Duration,
			MemoryBytes: cfg.Render.MemoryMB << 20}}).Render,
		Log:        log,
		PlanDrafts: cfg.PlanDrafts,
	}
	s.metrics = metrics.New(q.Pending, func(ctx context.Context) (int, error) {
		locks, err := q.State().Locks(ctx, "")
		return len(locks), err
	})
	s.metrics.DryRunCache(dryRuns.Counts)
	s.flow.ObserveApply = func(trigger, outcome string, took time.Duration) {
		s.metrics.Applies.WithLabelValues(trigger, outcome).Inc()
		s.metrics.ApplySeconds.Observe(took.Seconds())
	}
	s.flow.ObserveHistoryFailure = func(kind history.Kind) {
		s.metrics.HistoryAppendFailures.WithLabelValues(string(kind)).Inc()
	}
	s.watch = s.driftWatcher(q.State())
	s.workers = &worker.Pool{Queue: q, Handle: s.handle, GiveUp: s.giveUp, Workers: cfg.Workers, Timeout: cfg.JobTimeout.Duration, Grace: cfg.ShutdownGrace.Duration, Log: log,
		Observe: func(err error, took time.Duration) {
			outcome := "done"
			if err != nil {
				outcome = "failed"
			}
			s.metrics.Jobs.WithLabelValues(outcome).Inc()
			s.metrics.JobSeconds.Observe(took.Seconds())
		}}
	s.mux = http.NewServeMux()
	wake := wakingQueue{q: q, wake: s.workers.Wake}
	if cfg.GitHub.WebhookSecret != "" {
		s.mux.Handle("POST /webhooks/github", s.metrics.Webhook("github", &webhook.GitHub{Secret: []byte(cfg.GitHub.WebhookSecret), Queue: wake, Log: log}))
	}
	if cfg.GitLab.WebhookSecret != "" {
		s.mux.Handle("POST /webhooks/gitlab", s.metrics.Webhook("gitlab", &webhook.GitLab{Token: []byte(cfg.GitLab.WebhookSecret), Queue: wake, Log: log}))
	}
	s.mux.Handle("GET /metrics", s.metrics.Handler())
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", s.ready)
	if err := s.mountUI(o); err != nil {
		q.Close()
		return nil, err
	}
	return s, nil
}

// Handler serves webhooks and health.
func (s *Server) Handler() http.Handler { return s.mux }

// Run runs the workers, and prunes the queue now and then, until ctx ends; running jobs then
// have shutdownGrace to finish before they are handed back to the queue.
func (s *Server) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); s.pruneEvery(ctx, time.Hour) }()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if s.watch != nil {
			s.watch.Run(ctx)
		}
	}()
	s.workers.Run(ctx)
	<-done
	<-watched
}

// pruneEvery forgets finished jobs and delivery ids older than the retention, at start and
// then every interval (on every replica: the deletes are idempotent). The audit history is
// pruned only when history.retention says so, by its own age.
func (s *Server) pruneEvery(ctx context.Context, interval time.Duration) {
	for {
		jobs, deliveries, err := s.queue.Prune(ctx, time.Now().Add(-s.cfg.Retention.Duration))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("prune the queue", "err", err)
		case jobs+deliveries > 0:
			s.log.Info("pruned the queue", "jobs", jobs, "deliveries", deliveries, "olderThan", s.cfg.Retention.Duration)
		}
		if keep := s.cfg.History.Retention.Duration; keep > 0 {
			n, err := s.queue.State().PruneHistory(ctx, time.Now().Add(-keep))
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Warn("prune the history", "err", err)
			case n > 0:
				s.log.Info("pruned the history", "entries", n, "olderThan", keep)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Close closes the state store.
func (s *Server) Close() error { return s.queue.Close() }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	pending, err := s.queue.Pending(r.Context())
	if err != nil {
		http.Error(w, "state store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": true, "pendingJobs": pending})
}

// handle runs one queued event through the workflow.
func (s *Server) handle(ctx context.Context, job *store.Job) error {
	ev, err := webhook.Decode(job.Payload)
	if err != nil {
		return err
	}
	if !s.cfg.Allowed(ev.Repo) {
		s.log.Warn("repository not in the allowlist: event ignored", "repo", ev.Repo)
		return nil
	}
	if ev.Kind == event.IssueComment {
		return s.issueCommand(ctx, ev)
	}
	return s.flow.Handle(ctx, ev)
}

// issueCommand hands a command on a drift issue to the drift checks (driftwatch), which keep
// those issues; without scheduled checks there are none to answer on.
func (s *Server) issueCommand(ctx context.Context, ev event.Event) error {
	if s.watch == nil {
		s.log.Info("command on an issue, and no drift checks: ignored", "repo", ev.Repo, "issue", ev.Number)
		return nil
	}
	return s.watch.ApplyFromIssue(ctx, driftwatch.IssueCommand{Repository: driftwatch.Repository{Forge: string(ev.Forge), Name: ev.Repo},
		Number: ev.Number, CommentID: ev.CommentID, Body: ev.CommentBody, Sender: ev.Sender, SenderIsBot: ev.SenderIsBot, Marker: ev.IssueMarker})
}

// giveUp tells a pull request that kubeplan gave up on one of its events (worker.Pool.GiveUp).
func (s *Server) giveUp(ctx context.Context, job *store.Job, reason error) error {
	ev, err := webhook.Decode(job.Payload)
	if err != nil {
		return err
	}
	if !s.cfg.Allowed(ev.Repo) {
		return nil
	}
	if ev.Kind == event.IssueComment { // not a pull request's: nothing to tell there
		s.log.Warn("gave up on a command on a drift issue", "repo", ev.Repo, "issue", ev.Number, "err", reason)
		return nil
	}
	return s.flow.GaveUp(ctx, ev, reason)
}

// forgeFor returns the forge client for an event.
func (s *Server) forgeFor(_ context.Context, ev event.Event) (workflow.Forge, error) {
	switch ev.Forge {
	case event.GitHub:
		s.mu.Lock()
		defer s.mu.Unlock()
		if c := s.github[ev.InstallationID]; c != nil {
			return c, nil
		}
		c, err := ghforge.New(s.githubConfig(), ev.InstallationID)
		if err != nil {
			return nil, err
		}
		s.github[ev.InstallationID] = c
		return c, nil
	case event.GitLab:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.gitlab == nil {
			c, err := glforge.New(glforge.Config{BaseURL: s.cfg.GitLab.BaseURL, Token: s.cfg.GitLab.Token,
				HTTP: forgehttp.Options{Timeout: s.cfg.ForgeTimeout.Duration}, Log: s.log})
			if err != nil {
				return nil, err
			}
			s.gitlab = c
		}
		return s.gitlab, nil
	}
	return nil, fmt.Errorf("forge %q is not configured on this server", ev.Forge)
}

func (s *Server) githubConfig() ghforge.Config {
	return ghforge.Config{BaseURL: s.cfg.GitHub.BaseURL, Token: s.cfg.GitHub.Token, AppID: s.cfg.GitHub.AppID, PrivateKey: s.githubKey,
		HTTP: forgehttp.Options{Timeout: s.cfg.ForgeTimeout.Duration}, Log: s.log}
}

// driftWatcher wires the scheduled drift checks (docs/drift.md) to the workflow's parts.
func (s *Server) driftWatcher(state *store.State) *driftwatch.Watcher {
	var repos []driftwatch.Repository
	for _, r := range s.cfg.DriftRepositories() {
		repos = append(repos, driftwatch.Repository{Forge: r.Forge, Name: r.Name})
	}
	if s.cfg.Drift.Interval.Duration <= 0 || len(repos) == 0 {
		return nil
	}
	host, _ := os.Hostname()
	w := &driftwatch.Watcher{Repositories: repos, Interval: s.cfg.Drift.Interval.Duration, Lease: s.cfg.JobTimeout.Duration,
		Holder: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()), AllowRevert: s.cfg.Drift.AllowRevert,
		Forges: s.driftForge, Checkouts: s.flow.Checkouts, Clusters: s.flow.Clusters, Planner: s.flow.Planner, Applier: s.flow.Applier,
		Render: s.flow.Render, Access: s.cfg.Access, Policy: s.flow.Policy, HealthTimeout: s.flow.HealthTimeout, State: state, Log: s.log.With("part", "drift"),
		ObserveApply: s.flow.ObserveApply, ObserveHistoryFailure: s.flow.ObserveHistoryFailure,
		Observe: func(repository, project, cluster, outcome string, drifted int, took time.Duration) {
			s.metrics.DriftChecks.WithLabelValues(outcome).Inc()
			s.metrics.DriftCheckSeconds.Observe(took.Seconds())
			if outcome != "failed" {
				s.metrics.DriftObjects.WithLabelValues(repository, project, cluster).Set(float64(drifted))
			}
		}}
	if s.cfg.Drift.SlackWebhookURL != "" {
		w.Notifiers = append(w.Notifiers, &driftwatch.Slack{URL: s.cfg.Drift.SlackWebhookURL, HTTP: &http.Client{Timeout: s.cfg.ForgeTimeout.Duration}})
	}
	if s.cfg.Drift.Issues {
		w.Notifiers = append(w.Notifiers, driftIssues{s})
	}
	return w
}

// driftIssues tells drift to the repository's forge as one issue per project × cluster
// (package driftissue), through the same forge client as the check.
type driftIssues struct{ s *Server }

func (d driftIssues) Notify(ctx context.Context, n driftwatch.Notice) error {
	_, err := d.NotifyIssue(ctx, n)
	return err
}

// NotifyIssue keeps the issue and returns it, for the history (driftwatch.IssueKeeper).
func (d driftIssues) NotifyIssue(ctx context.Context, n driftwatch.Notice) (*forge.Issue, error) {
	forgeName, repo, _ := strings.Cut(n.Repository, ":")
	f, err := d.s.driftForge(ctx, driftwatch.Repository{Forge: forgeName, Name: repo})
	if err != nil {
		return nil, err
	}
	issues, ok := f.(driftissue.Forge)
	if !ok {
		return nil, fmt.Errorf("forge %s cannot keep drift issues", forgeName)
	}
	report := *n.Report
	if report.Commit == "" {
		report.Commit = n.SHA // the closing note names the commit checked
	}
	return (&driftissue.Notifier{Forge: issues}).Update(ctx, repo, n.Project, n.Cluster, &report)
}

// driftForge is the forge client for a repository a drift check reads; a GitHub App's
// installation is looked up once per repository (no webhook names it).
func (s *Server) driftForge(ctx context.Context, r driftwatch.Repository) (driftwatch.Forge, error) {
	ev := event.Event{Forge: event.Forge(r.Forge), Repo: r.Name}
	if ev.Forge == event.GitHub && s.cfg.GitHub.AppID != 0 {
		id, ok := s.installations.Load(r.Name)
		if !ok {
			found, err := ghforge.Installation(ctx, s.githubConfig(), r.Name)
			if err != nil {
				return nil, err
			}
			id, _ = s.installations.LoadOrStore(r.Name, found)
		}
		ev.InstallationID = id.(int64)
	}
	f, err := s.forgeFor(ctx, ev)
	if err != nil {
		return nil, err
	}
	df, ok := f.(driftwatch.Forge)
	if !ok {
		return nil, fmt.Errorf("forge %s cannot read default branches", r.Forge)
	}
	return df, nil
}

// wakingQueue wakes the workers as soon as an event is queued.
type wakingQueue struct {
	q    *store.Queue
	wake func()
}

func (w wakingQueue) Enqueue(ctx context.Context, delivery string, job store.Job, coalesce bool) (bool, error) {
	ok, err := w.q.Enqueue(ctx, delivery, job, coalesce)
	if ok {
		w.wake()
	}
	return ok, err
}
