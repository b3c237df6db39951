// Package driftwatch checks, on a schedule, whether the clusters still match the default
// branch of each configured repository, and acts on what it finds: it records every check in
// the store, tells its Notifiers when drift appears, changes or goes away, and re-applies the
// objects whose drift mode is revert where the server allows it.
//
// Each project × cluster is checked by exactly one replica per interval: a lease in the store
// (store.State.TakeDriftCheck) that a replica takes only when the last check is older than the
// interval and no other replica holds it.
//
// # Notifiers
//
// A Notifier hears of drift of one project on one cluster when its signature changes: new
// drift (Previous is ""), changed drift (both set, different), or drift resolved
// (Report.Signature() is "", Previous is not). The same drift seen again notifies nobody.
// Notice is plain data: the repository, project, cluster, the commit checked, the report and
// the signature notified before. The signature counts as notified only once every Notifier
// took the notice; when one fails, the next check tells them all again.
//
//	type Notifier interface {
//		Notify(ctx context.Context, n Notice) error
//	}
//
// Slack is one (a Slack-compatible incoming webhook); a forge issue per project × cluster is
// another, plugged in the same way (Watcher.Notifiers).
//
// # /apply on the drift issue
//
// ApplyFromIssue answers `/apply` commented on that issue: the same checks as a pull
// request's /apply (the role from the server's policy, no lock, a fresh plan of the default
// branch), then git's state of the drifted objects applied through the same path as a revert,
// recorded with trigger drift_apply and the commenter as actor, and a check right after.
package driftwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/access"
	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/archive"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/drift"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/outcome"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/render"
	"github.com/kubeplan/kubeplan/repoconfig"
	"github.com/kubeplan/kubeplan/store"
)

// Notice is drift of one project on one cluster whose signature changed since the last notice.
type Notice struct {
	// Repository is "forge:owner/name", as the store and inventories name it.
	Repository string
	Project    string
	Cluster    string
	// SHA is the default branch's commit the cluster was compared with.
	SHA string
	// Report is the check's report; Report.Signature() is "" when the drift is resolved.
	Report *drift.Report
	// Previous is the signature notified before ("" when there was no drift).
	Previous string
	// Revert says what became of the objects whose mode is revert ("" when there were none):
	// reverted, or why not (a lock, the server's policy, a failure).
	Revert string
}

// Resolved reports whether the notice says that drift went away.
func (n Notice) Resolved() bool { return n.Report.Signature() == "" }

// Notifier is told of new, changed and resolved drift (see the package doc).
type Notifier interface {
	Notify(ctx context.Context, n Notice) error
}

// Forge is what a check needs of GitHub or GitLab.
type Forge interface {
	DefaultBranch(ctx context.Context, repo string) (branch, sha string, err error)
	Archive(ctx context.Context, repo, sha string) (io.ReadCloser, error)
}

// State is what driftwatch keeps in the store (package store implements it).
type State interface {
	TakeDriftCheck(ctx context.Context, repo string, t store.Target, holder string, every, lease time.Duration) (bool, error)
	FinishDriftCheck(ctx context.Context, holder string, r store.DriftRecord) error
	MarkDriftNotified(ctx context.Context, repo string, t store.Target, signature string) error
	DriftOf(ctx context.Context, repo string, t store.Target) (store.DriftRecord, bool, error)
	LockOf(ctx context.Context, repo string, t store.Target) (store.Lock, bool, error)
	StartApply(ctx context.Context, r store.ApplyRecord) (int64, error)
	FinishApply(ctx context.Context, id int64, state, summary, report string) error
	// AppendHistory appends an entry to the audit history (package history).
	AppendHistory(ctx context.Context, e history.Entry) (history.Entry, error)
}

// Repository is one repository whose default branch is checked.
type Repository struct {
	// Forge is "github" or "gitlab"; Name is owner/name or group/project.
	Forge, Name string
}

// Key is "forge:owner/name", as the store and inventories name the repository.
func (r Repository) Key() string { return r.Forge + ":" + r.Name }

// Actor is who the apply history says reverted drift.
const Actor = "kubeplan (drift revert)"

// Watcher runs the scheduled checks.
type Watcher struct {
	Repositories []Repository
	// Interval between checks of a project on a cluster, unless its .kubeplan.yaml says
	// otherwise; Lease bounds one check (a replica that dies holding it frees it then).
	Interval, Lease time.Duration
	// Holder names this replica in leases.
	Holder string
	// AllowRevert lets repositories choose revert; without it revert is reported as notify.
	AllowRevert bool
	Forges      func(ctx context.Context, r Repository) (Forge, error)
	Checkouts   *archive.Cache
	Clusters    *cluster.Pool
	Planner     drift.Planner
	Applier     *applier.Applier
	// Render renders a project of a checkout; nil renders in this process.
	Render func(ctx context.Context, repoRoot, dir string, opts render.Options) (*render.Result, error)
	Access access.Rules
	// Policy is the server's policy: who has the apply role for `/apply` on a drift issue
	// (ApplyFromIssue), with the rules the default branch's .kubeplan.yaml adds. Nil is the
	// empty policy.
	Policy        *policy.Policy
	HealthTimeout time.Duration
	State         State
	Notifiers     []Notifier
	// Observe, when set, hears of every check (for metrics): outcome is drift, clean or
	// failed, drifted the objects that count as drift.
	Observe func(repository, project, cluster, outcome string, drifted int, took time.Duration)
	// ObserveApply, when set, hears of every revert, as workflow.Workflow.ObserveApply does.
	ObserveApply func(trigger, outcome string, took time.Duration)
	// ObserveHistoryFailure, when set, hears of every history entry the store did not take
	// (for metrics); the check or apply it records is not affected.
	ObserveHistoryFailure func(kind history.Kind)
	Log                   *slog.Logger
}

// Run checks at start and then whenever checks may be due, until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	for {
		smallest, _ := w.CheckDue(ctx)
		// A check falls due at most a quarter of its interval after it could.
		wait := max(smallest/4, 50*time.Millisecond)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// CheckDue runs, for every repository, the checks of the project × cluster pairs that are due
// and that no other replica runs now. It returns the smallest interval among them (for Run)
// and what failed, every repository tried.
func (w *Watcher) CheckDue(ctx context.Context) (smallest time.Duration, err error) {
	smallest = w.Interval
	var errs []error
	for _, r := range w.Repositories {
		every, err := w.checkRepository(ctx, r)
		if err != nil {
			w.Log.Warn("drift check", "repo", r.Key(), "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", r.Key(), err))
		}
		if every > 0 {
			smallest = min(smallest, every)
		}
	}
	return smallest, errors.Join(errs...)
}

// target is one project on one cluster of a repository's default branch.
type target struct {
	repo    Repository
	sha     string
	dir     string
	cfg     *repoconfig.Config
	project repoconfig.Project
	cluster string
}

func (t target) key() store.Target { return store.Target{Project: t.project.Name, Cluster: t.cluster} }

// checkRepository fetches the default branch's head and checks its due targets; it returns
// the smallest interval of its projects.
func (w *Watcher) checkRepository(ctx context.Context, r Repository) (time.Duration, error) {
	f, err := w.Forges(ctx, r)
	if err != nil {
		return 0, err
	}
	_, sha, err := f.DefaultBranch(ctx, r.Name)
	if err != nil {
		return 0, err
	}
	dir, err := w.Checkouts.Checkout(ctx, r.Name, sha, func(ctx context.Context) (io.ReadCloser, error) { return f.Archive(ctx, r.Name, sha) })
	if err != nil {
		return 0, err
	}
	cfg, err := repoconfig.Load(os.DirFS(dir))
	if err != nil {
		return 0, fmt.Errorf("at %s: %w", sha, err)
	}
	var smallest time.Duration
	var errs []error
	for _, p := range cfg.Projects {
		every := cfg.DriftInterval(p)
		if every == 0 {
			every = w.Interval
		}
		smallest = minPositive(smallest, every)
		clusters := p.Clusters
		if len(clusters) == 0 {
			clusters = []string{w.Clusters.Registry().Default}
		}
		for _, c := range clusters {
			t := target{repo: r, sha: sha, dir: dir, cfg: cfg, project: p, cluster: c}
			taken, err := w.State.TakeDriftCheck(ctx, r.Key(), t.key(), w.Holder, every, w.Lease)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if taken {
				if err := w.check(ctx, t); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return smallest, errors.Join(errs...)
}

func minPositive(a, b time.Duration) time.Duration {
	if a == 0 {
		return b
	}
	return min(a, b)
}

// check runs one leased check, records it, reverts what may be reverted and notifies.
func (w *Watcher) check(ctx context.Context, t target) error {
	started := time.Now()
	log := w.Log.With("repo", t.repo.Key(), "project", t.project.Name, "cluster", t.cluster, "sha", t.sha)
	ctx, cancel := context.WithTimeout(ctx, w.Lease)
	defer cancel()
	prev, _, err := w.State.DriftOf(ctx, t.repo.Key(), t.key())
	if err != nil {
		return err
	}
	report, revert, checkErr := w.run(ctx, t, log)
	rec := store.DriftRecord{Repo: t.repo.Key(), Target: t.key(), SHA: t.sha}
	if checkErr != nil {
		// The last good report and signature stand: a failed check is no news of drift.
		rec.Signature, rec.Changed, rec.Missing, rec.Extra, rec.Failed, rec.Report = prev.Signature, prev.Changed, prev.Missing, prev.Extra, prev.Failed, prev.Report
		rec.Error = w.Clusters.Redact(checkErr.Error())
		log.Warn("drift check failed", "err", checkErr)
		w.observe(t, "failed", prev.Changed+prev.Missing+prev.Extra, started)
		w.record(ctx, failedCheckEntry(t, rec.Error))
		return errors.Join(fmt.Errorf("project %s on %s: %w", t.project.Name, t.cluster, checkErr),
			w.State.FinishDriftCheck(context.WithoutCancel(ctx), w.Holder, rec))
	}
	var body bytes.Buffer
	if err := drift.JSON(&body, report); err != nil {
		return err
	}
	c := report.Counts()
	rec.Signature, rec.Changed, rec.Missing, rec.Extra, rec.Failed, rec.Report = report.Signature(), c.Changed, c.Missing, c.Extra, len(report.Failed), body.String()
	if err := w.State.FinishDriftCheck(ctx, w.Holder, rec); err != nil {
		return err
	}
	outcome := "clean"
	if c.Total() > 0 {
		outcome = "drift"
	}
	log.Info("drift checked", "result", report.Summary(), "revert", revert)
	w.observe(t, outcome, c.Total(), started)
	// Every check is in the history; one that finds what the last one found says so and lists
	// no objects, so that an object's timeline shows when its drift began and ended, not every
	// check in between.
	repeat := !prev.CheckedAt.IsZero() && prev.Error == "" && rec.Signature == prev.Signature
	if rec.Signature == prev.Notified {
		w.record(ctx, checkEntry(t, report, revert, nil, repeat))
		return nil // the same drift seen again (or still none) notifies nobody
	}
	n := Notice{Repository: t.repo.Key(), Project: t.project.Name, Cluster: t.cluster, SHA: t.sha, Report: report, Previous: prev.Notified, Revert: revert}
	var errs []error
	var issue *forge.Issue
	for _, nf := range w.Notifiers {
		var err error
		if keeper, ok := nf.(IssueKeeper); ok {
			var is *forge.Issue
			if is, err = keeper.NotifyIssue(ctx, n); is != nil {
				issue = is
			}
		} else {
			err = nf.Notify(ctx, n)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	w.record(ctx, checkEntry(t, report, revert, issue, repeat))
	if err := errors.Join(errs...); err != nil {
		log.Warn("drift notice not delivered: the next check sends it again", "err", err)
		return err
	}
	return w.State.MarkDriftNotified(ctx, t.repo.Key(), t.key(), rec.Signature)
}

func (w *Watcher) observe(t target, outcome string, drifted int, started time.Time) {
	if w.Observe != nil {
		w.Observe(t.repo.Key(), t.project.Name, t.cluster, outcome, drifted, time.Since(started))
	}
}

// planned is a fresh check of a target: the report, and what applying git needs.
type planned struct {
	report    *drift.Report
	client    *cluster.Client
	grant     access.Grant
	namespace string
	// objects are as the planner left them (namespaces defaulted, labelled); pristine are
	// git's as rendered, which an apply applies.
	objects, pristine []manifest.Object
}

// run renders the project as the default branch has it, checks it against the cluster and
// reverts what may be reverted; revert says what became of that.
func (w *Watcher) run(ctx context.Context, t target, log *slog.Logger) (report *drift.Report, revert string, err error) {
	p, err := w.plan(ctx, t)
	if err != nil {
		return nil, "", err
	}
	revert, err = w.revert(ctx, t, p, log)
	return p.report, revert, err
}

// plan renders the project as the default branch has it and checks it against the cluster.
func (w *Watcher) plan(ctx context.Context, t target) (*planned, error) {
	grant, err := w.Access.For(t.repo.Forge, t.repo.Name, t.cluster)
	if err != nil {
		return nil, err
	}
	client, err := w.Clusters.Get(ctx, t.cluster)
	if err != nil {
		return nil, err
	}
	opts := t.project.RenderOptions(client.Version)
	renderFn := w.Render
	if renderFn == nil {
		renderFn = render.Render
	}
	res, err := renderFn(ctx, t.dir, t.project.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", t.project.Dir, err)
	}
	// The planner defaults namespaces and labels objects in place; an apply applies git's
	// objects as rendered, like any apply.
	pristine := make([]manifest.Object, len(res.Objects))
	for i, o := range res.Objects {
		pristine[i] = manifest.Object{Unstructured: o.Unstructured.DeepCopy(), Source: o.Source}
	}
	report, err := drift.Check(ctx, w.Planner, client, planner.Request{Project: t.project.Name, Objects: res.Objects, Notes: res.Notes,
		Renderer: string(res.Renderer), Namespace: opts.Namespace, Repository: t.repo.Key(), Scope: grant, CompareSecretValues: true}, Settings(t.cfg, t.project))
	if err != nil {
		return nil, err
	}
	return &planned{report: report, client: client, grant: grant, namespace: opts.Namespace, objects: res.Objects, pristine: pristine}, nil
}

// Settings are a project's drift settings as its .kubeplan.yaml gives them.
func Settings(cfg *repoconfig.Config, p repoconfig.Project) drift.Settings {
	s := drift.Settings{Mode: drift.Mode(cfg.DriftMode(p)), NoDefaults: !cfg.DriftDefaultIgnore(p)}
	for _, r := range cfg.DriftIgnores(p) {
		s.Ignore = append(s.Ignore, drift.Rule{Kinds: r.Kinds, Path: r.Path, Manager: r.Manager, Operation: r.Operation, Subresource: r.Subresource})
	}
	return s
}

func refKey(r plan.ObjectRef) string {
	return r.Group() + "|" + r.Kind + "|" + r.Namespace + "|" + r.Name
}

func refOf(u *unstructured.Unstructured) plan.ObjectRef {
	return plan.ObjectRef{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// revert re-applies git's state of the changed and missing objects whose mode is revert,
// through the applier as a roll-out does (the project's Force, the repository as the
// inventory's owner, the access rules), unless the server does not allow revert or a pull
// request holds the project × cluster locked. Extra objects are not deleted: pruning stays
// with roll-outs. It records the revert in the apply history and says what became of it.
func (w *Watcher) revert(ctx context.Context, t target, p *planned, log *slog.Logger) (string, error) {
	r := p.report
	want := map[string]bool{}
	extra := 0
	for _, o := range r.Objects {
		if o.Mode != drift.Revert || !o.Counted() {
			continue
		}
		if o.State == drift.Extra {
			extra++
		} else {
			want[refKey(o.Object)] = true
		}
	}
	if len(want)+extra == 0 {
		return "", nil
	}
	if !w.AllowRevert {
		for i := range r.Objects {
			if r.Objects[i].Mode == drift.Revert {
				r.Objects[i].Mode = drift.Notify
			}
		}
		return "not reverted: this server does not let repositories choose revert (drift.allowRevert), so it is reported as notify", nil
	}
	var note string
	if extra > 0 {
		note = fmt.Sprintf("; %d extra object(s) not deleted (pruning is left to roll-outs)", extra)
	}
	if len(want) == 0 {
		return "nothing reverted" + note, nil
	}
	lock, locked, err := w.State.LockOf(ctx, t.repo.Key(), t.key())
	if err != nil {
		return "", err
	}
	if locked {
		return fmt.Sprintf("not reverted: #%d (%s) holds %s on %s locked", lock.Number, lock.Holder, t.project.Name, t.cluster) + note, nil
	}
	a, err := w.reapply(ctx, t, p, want, store.DriftRevert, Actor, entryOf(history.Revert, t, HistoryActor), log)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("reverted %d object(s): %s (%s)", len(a.objects), a.state, a.summary) + note, nil
}

// applied is what reapply did.
type applied struct {
	// objects name the objects applied, each with its outcome once the apply ran.
	objects        []string
	state, summary string
}

// reapply applies git's state of the objects in want (by refKey) through the applier as a
// roll-out does (the project's Force, the repository as the inventory's owner, the access
// rules), and records it in the apply history with trigger and actor, and in the history
// (package history) as entry says.
func (w *Watcher) reapply(ctx context.Context, t target, p *planned, want map[string]bool, trigger, actor string, entry history.Entry, log *slog.Logger) (applied, error) {
	var objects []manifest.Object
	var names []string
	for i, o := range p.objects {
		if ref := refOf(o.Unstructured); want[refKey(ref)] {
			objects = append(objects, p.pristine[i])
			names = append(names, ref.String())
		}
	}
	id, err := w.State.StartApply(ctx, store.ApplyRecord{PR: t.repo.Key(), Target: t.key(), SHA: t.sha, Trigger: trigger, Actor: actor})
	if err != nil {
		return applied{}, err
	}
	started := time.Now()
	res, err := w.Applier.Apply(ctx, p.client, applier.Request{Project: t.project.Name, Namespace: p.namespace, Objects: objects,
		Force: t.project.Apply.Force, HealthTimeout: w.HealthTimeout, Repository: t.repo.Key(), Scope: p.grant})
	state, summary := store.ApplyFailed, ""
	switch {
	case err != nil && ctx.Err() != nil:
		return applied{}, err // stopped: the record stays running, as an interrupted apply's does
	case err != nil:
		summary = w.Clusters.Redact(err.Error())
		w.redact(res) // what was applied before it stopped, for the history
	default:
		w.redact(res)
		summary = res.Counts().String()
		if !res.Failed() {
			state = store.ApplySucceeded
		}
		// Each object with what became of it, and why it failed where it did.
		names = names[:0]
		for _, o := range res.Objects {
			names = append(names, o.String())
		}
	}
	if w.ObserveApply != nil {
		w.ObserveApply(trigger, state, time.Since(started))
	}
	log.Info("drift applied", "trigger", trigger, "actor", actor, "objects", len(objects), "state", state, "summary", summary)
	w.record(ctx, applyEntry(entry, p.report, state, summary, res))
	if err := w.State.FinishApply(ctx, id, state, summary, ""); err != nil {
		return applied{}, err
	}
	return applied{objects: names, state: state, summary: summary}, nil
}

// redact takes the clusters' addresses and credentials out of res's errors and health
// messages (res may be nil).
func (w *Watcher) redact(res *outcome.Result) {
	if res == nil {
		return
	}
	for i, o := range res.Objects {
		res.Objects[i].Error = w.Clusters.Redact(o.Error)
		res.Objects[i].HealthMessage = w.Clusters.Redact(o.HealthMessage)
	}
}
