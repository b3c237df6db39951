package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/access"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/render"
	"github.com/kubeplan/kubeplan/repoconfig"
	"github.com/kubeplan/kubeplan/store"
)

// checkout is a pull request's files at one commit, with the configuration they carry.
type checkout struct {
	// forge and repo name the repository; owner is both as inventories record it.
	forge event.Forge
	repo  string
	owner string
	sha   string
	dir   string
	cfg   *repoconfig.Config
	// base is the configuration of the branch the change targets; kin relates each project of
	// cfg to it, for policy (see kin).
	base           *repoconfig.Config
	kin            map[string]kin
	defaultCluster string
	policy         *policy.Policy
	owners         policy.CodeOwners
	files          []string // changed by the pull request
}

// target is one project on one cluster.
type target struct {
	project repoconfig.Project
	cluster string
}

func (t target) key() store.Target { return store.Target{Project: t.project.Name, Cluster: t.cluster} }

func (t target) String() string { return t.where().String() }

// where is the target as texts name it.
func (t target) where() comments.Where {
	return comments.Where{Project: t.project.Name, Cluster: t.cluster}
}

// byCluster runs do for each target: the targets of one cluster one after another, in order
// (a project may need what an earlier one installs there), different clusters side by side,
// so that a slow health wait on one cluster does not hold up the others or the job's time.
// Every cluster runs to its end; the first error is returned. A panic becomes that cluster's
// error, as it would have been the job's: the worker recovers only its own goroutine.
func byCluster(targets []target, do func(i int, t target) error) error {
	of := map[string][]int{} // cluster → its targets' indexes, in order
	for i, t := range targets {
		of[t.cluster] = append(of[t.cluster], i)
	}
	var g errgroup.Group
	for cluster, indexes := range of {
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("cluster %s: panicked: %v", cluster, r)
				}
			}()
			for _, i := range indexes {
				if err := do(i, targets[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// checkout fetches the repository at sha and reads its configuration and policy. Problems the
// repository's authors must fix come back as *repoconfig.Error.
func (w *Workflow) checkout(ctx context.Context, f Forge, ev event.Event, pr *forge.PullRequest, sha string) (*checkout, error) {
	files, err := f.ChangedFiles(ctx, pr.Repo, pr.Number)
	if err != nil {
		return nil, err
	}
	dir, err := w.Checkouts.Checkout(ctx, pr.Repo, sha, func(ctx context.Context) (io.ReadCloser, error) {
		return f.Archive(ctx, pr.Repo, sha)
	})
	if err != nil {
		return nil, err
	}
	cfg, err := repoconfig.Load(os.DirFS(dir))
	if err != nil {
		return nil, err
	}
	// The rules that judge a change come from the branch it targets, never from the change:
	// a pull request must not be able to drop its own approval rules, rename its projects out
	// of them or name its author a code owner. A merged pull request's roll-out is judged as
	// its /apply would have been, against the base it was reviewed on.
	baseDir, baseCfg := dir, cfg
	if pr.BaseSHA != "" && pr.BaseSHA != sha {
		if baseDir, err = w.Checkouts.Checkout(ctx, pr.Repo, pr.BaseSHA, func(ctx context.Context) (io.ReadCloser, error) {
			return f.Archive(ctx, pr.Repo, pr.BaseSHA)
		}); err != nil {
			return nil, err
		}
		if baseCfg, err = repoconfig.Load(os.DirFS(baseDir)); err != nil {
			var cfgErr *repoconfig.Error
			if !errors.As(err, &cfgErr) {
				return nil, err
			}
			baseCfg = &repoconfig.Config{} // a broken base config adds no rules; the server's still hold
		}
	}
	pol, err := w.Policy.Extend(baseCfg.Policy)
	if err != nil {
		// The server's own policy was compiled at start: what fails now is the repository's.
		return nil, &repoconfig.Error{Reason: err.Error()}
	}
	if cfg.Policy != nil {
		// Check the pull request's own policy edits now, so a bad rule fails its plan rather
		// than the merge that makes it the base.
		if _, err := w.Policy.Extend(cfg.Policy); err != nil {
			return nil, &repoconfig.Error{Reason: err.Error()}
		}
	}
	owners, err := policy.LoadCodeOwners(os.DirFS(baseDir))
	if err != nil {
		return nil, &repoconfig.Error{Reason: "CODEOWNERS: " + err.Error()}
	}
	def := w.Clusters.Registry().Default
	return &checkout{forge: ev.Forge, repo: ev.Repo, owner: repoKey(ev), sha: sha, dir: dir, cfg: cfg, base: baseCfg,
		kin: relate(cfg, baseCfg, def), defaultCluster: def, policy: pol, owners: owners, files: files}, nil
}

// policyTarget is a project on a cluster as policy sees it: under its name here and, if the
// pull request changed the project, under the names the base branch knows it by.
func (c *checkout) policyTarget(project, cluster string) policy.Target {
	return c.kin[project].target(project, cluster, c.defaultCluster)
}

// policyScope is what approval rules are judged on: each target under all its names, and the
// base branch's project × cluster pairs whose files the change touches (a pull request's own
// configuration cannot take a project out of its review), those the selection names. Notes
// say why rules of other names apply.
func (c *checkout) policyScope(targets []planned, sel selection) (scope []policy.Target, notes []string) {
	noted := map[string]bool{}
	for _, t := range targets {
		scope = append(scope, c.policyTarget(t.project.Name, t.cluster))
		if n := c.kin[t.project.Name].note(t.project.Name); n != "" && !noted[t.project.Name] {
			noted[t.project.Name] = true
			notes = append(notes, n)
		}
	}
	if c.base != nil {
		for _, p := range c.base.Affected(c.files) {
			for _, cl := range clustersOf(p, c.defaultCluster) {
				if sel.matches(p.Name, cl) {
					scope = append(scope, policy.Target{Project: p.Name, Cluster: cl})
				}
			}
		}
	}
	return scope, notes
}

// targets lists the project × cluster pairs the change touches, in configuration order.
func (c *checkout) targets(defaultCluster string, sel selection, keep func(repoconfig.Project) bool) []target {
	var out []target
	for _, p := range c.cfg.Affected(c.files) {
		if keep != nil && !keep(p) {
			continue
		}
		clusters := p.Clusters
		if len(clusters) == 0 {
			clusters = []string{defaultCluster}
		}
		for _, name := range clusters {
			if sel.matches(p.Name, name) {
				out = append(out, target{project: p, cluster: name})
			}
		}
	}
	return out
}

// planned is one target's plan, or the error that stopped it, with the objects it was made
// from, exactly as an apply of that plan sends them. It is workflow's own: the plan comment's
// comments.Target is made from it where the comment is written (planComment).
type planned struct {
	target
	plan *plan.Plan // nil when err is set
	err  string     // one line: what failed, naming the file or cluster
	// objects and namespace are what an apply of this plan sends.
	objects   []manifest.Object
	namespace string
	// grant is what the repository may touch on the cluster; apply is held to it as well.
	grant access.Grant
}

func prInfo(pr *forge.PullRequest) policy.PRInfo {
	return policy.PRInfo{Repo: pr.Repo, Number: pr.Number, Author: pr.Author, BaseRef: pr.BaseRef, HeadRef: pr.HeadRef}
}

// planTarget renders and plans one project on one cluster, checking each change against the
// manifest rules; failures become the target's one-line error, never a stack trace.
func (w *Workflow) planTarget(ctx context.Context, co *checkout, t target, pr policy.PRInfo, log *slog.Logger) planned {
	out := planned{target: t}
	grant, err := w.Access.For(string(co.forge), co.repo, t.cluster)
	if err != nil {
		out.err = err.Error()
		log.Info("refused by the access rules", "project", t.project.Name, "cluster", t.cluster, "err", err)
		return out
	}
	out.grant = grant
	client, err := w.Clusters.Get(ctx, t.cluster)
	if err != nil {
		out.err = w.public(err)
		log.Warn("cluster unavailable", "project", t.project.Name, "cluster", t.cluster, "err", err)
		return out
	}
	opts := t.project.RenderOptions(client.Version)
	out.namespace = opts.Namespace
	renderFn := w.Render
	if renderFn == nil {
		renderFn = render.Render
	}
	res, err := renderFn(ctx, co.dir, t.project.Dir, opts)
	if err != nil {
		out.err = "render " + t.project.Dir + ": " + err.Error()
		log.Info("render failed", "project", t.project.Name, "err", err)
		return out
	}
	budget := policy.NewBudget() // one for the plan: every object under every rule
	inspect := func(ch *plan.Change, plannedObj, live *unstructured.Unstructured) {
		ch.Findings = co.policy.Check(ctx, budget, co.policyTarget(t.project.Name, t.cluster), *ch, policy.Content(plannedObj), policy.Content(live), pr)
	}
	pl, err := w.Planner.Plan(ctx, client, planner.Request{Project: t.project.Name, Objects: res.Objects, Notes: res.Notes,
		Renderer: string(res.Renderer), Namespace: out.namespace, Inspect: inspect, Repository: co.owner, Scope: grant})
	if err == nil {
		err = budget.Err() // an incomplete check is no plan to review or apply
	}
	if err != nil {
		out.err = w.public(err)
		log.Warn("plan failed", "project", t.project.Name, "cluster", t.cluster, "err", err)
		return out
	}
	out.plan, out.objects = pl, res.Objects
	return out
}

// plan plans the projects a pull request touches (those sel names afresh, the others too
// unless their plan for this head is stored) and updates the plan comment and the statuses.
func (w *Workflow) plan(ctx context.Context, ev event.Event, sel selection) error {
	f, pr, err := w.pullRequest(ctx, ev)
	if err != nil {
		return err
	}
	log := w.Log.With("repo", ev.Repo, "number", ev.Number, "head", pr.HeadSHA)
	if pr.Closed {
		log.Info("pull request is closed: not planning")
		return nil
	}
	if pr.Draft && !w.PlanDrafts {
		log.Info("draft pull request: not planning (server setting)")
		return nil
	}
	st := statuses{f: f, repo: ev.Repo, sha: pr.HeadSHA}
	co, err := w.checkout(ctx, f, ev, pr, pr.HeadSHA)
	var cfgErr *repoconfig.Error
	switch {
	case errors.As(err, &cfgErr):
		// A bad .kubeplan.yaml is the author's to fix: say so on the pull request.
		in := comments.Input{HeadSHA: pr.HeadSHA, Commands: []string{comments.CommandsLine}, Limit: f.MaxCommentLength(),
			Targets: []comments.Target{comments.ConfigTarget(cfgErr.Error())}}
		if err := w.publish(ctx, f, pr, in, true); err != nil {
			_ = st.plan(ctx, forge.Error, "kubeplan could not post the plan: "+w.public(err))
			return err
		}
		_ = st.policy(ctx, forge.Failure, "Policy not evaluated: "+cfgErr.Error())
		return st.plan(ctx, forge.Failure, cfgErr.Error())
	case err != nil:
		_ = st.plan(ctx, forge.Error, "kubeplan could not plan: "+w.public(err))
		return err
	}
	if pr.Draft && co.cfg.Drafts == "skip" {
		log.Info("draft pull request: not planning (repository setting)")
		return st.plan(ctx, forge.Success, "Draft: planning waits until ready for review")
	}
	all := co.targets(w.Clusters.Registry().Default, selection{}, nil)
	if len(co.targets(w.Clusters.Registry().Default, sel, nil)) == 0 && sel != (selection{}) {
		// Nothing changes: the statuses of the last plan stand.
		return reply(ctx, f, ev, comments.NoMatch(sel.String(), wheres(all)))
	}
	if err := st.plan(ctx, forge.Pending, "Planning…"); err != nil {
		return err
	}

	results, fresh, err := w.planAll(ctx, ev, co, pr, all, sel, log)
	if err != nil {
		_ = st.plan(ctx, forge.Error, "kubeplan could not plan: "+w.public(err))
		return err
	}
	// Each target planned now is in the history, with the policy's verdict once it is known
	// (without one when posting the plan failed first).
	var v verdict
	defer func() { w.recordPlans(ctx, ev, pr, results, fresh, v) }()
	in := comments.Input{HeadSHA: pr.HeadSHA, Commands: []string{comments.CommandsLine}, Limit: f.MaxCommentLength()}
	if co.cfg.Discovered {
		in.Notes = append(in.Notes, comments.NoConfigNote)
	}
	notes, err := w.lockNotes(ctx, ev, all)
	if err != nil {
		_ = st.plan(ctx, forge.Error, "kubeplan could not read its locks: "+w.public(err))
		return err
	}
	in.Notes = append(in.Notes, notes...)
	in.Targets = commentTargets(results)
	if len(in.Targets) == 0 {
		// Nothing to plan: update an earlier plan comment so it does not look current.
		if err := w.publish(ctx, f, pr, in, false); err != nil {
			_ = st.plan(ctx, forge.Error, "kubeplan could not update its comment: "+w.public(err))
			return err
		}
		_ = st.policy(ctx, forge.Success, "No project is affected by this change")
		return st.plan(ctx, forge.Success, "No project is affected by this change")
	}
	if err := w.publish(ctx, f, pr, in, true); err != nil {
		// Never leave the status pending: a pending status would block the merge silently.
		_ = st.plan(ctx, forge.Error, "kubeplan could not post the plan: "+w.public(err))
		return err
	}
	state, desc := summarize(results)
	log.Info("planned", "targets", len(in.Targets), "result", desc)
	if err := st.plan(ctx, state, desc); err != nil {
		return err
	}
	if v, err = w.evaluatePolicy(ctx, f, ev, pr, co, results); err != nil {
		return err
	}
	return w.applyRequirement(ctx, f, ev, pr, all)
}

// planAll plans every target: those the selection names afresh, the others from the stored
// plan of this head when there is one. Plans are stored for /apply's freshness check.
// fresh[i] is true when out[i] was planned now.
func (w *Workflow) planAll(ctx context.Context, ev event.Event, co *checkout, pr *forge.PullRequest, all []target, sel selection, log *slog.Logger) (out []planned, fresh []bool, err error) {
	stored := map[store.Target]store.PlanRecord{}
	if sel != (selection{}) {
		records, err := w.State.Plans(ctx, prKey(ev))
		if err != nil {
			return nil, nil, err
		}
		for _, r := range records {
			stored[r.Target] = r
		}
	}
	out, fresh = make([]planned, len(all)), make([]bool, len(all))
	var keep []store.Target
	var todo []target
	var todoAt []int // todo[k] is all[todoAt[k]]
	for i, t := range all {
		keep = append(keep, t.key())
		if r, ok := stored[t.key()]; ok && !sel.matches(t.project.Name, t.cluster) && r.SHA == pr.HeadSHA {
			var p plan.Plan
			if err := json.Unmarshal(r.Body, &p); err == nil {
				out[i] = planned{target: t, plan: &p}
				continue
			}
		}
		todo, todoAt = append(todo, t), append(todoAt, i)
	}
	for k, res := range w.planTargets(ctx, co, todo, prInfo(pr), log) {
		if res.plan != nil {
			body, err := json.Marshal(res.plan)
			if err != nil {
				return nil, nil, fmt.Errorf("store plan of %s: %w", todo[k], err)
			}
			if err := w.State.SavePlan(ctx, prKey(ev), store.PlanRecord{Target: todo[k].key(), SHA: pr.HeadSHA, Hash: res.plan.Hash(), Body: body}); err != nil {
				return nil, nil, err
			}
		}
		out[todoAt[k]], fresh[todoAt[k]] = res, true
	}
	return out, fresh, w.State.DeletePlans(ctx, prKey(ev), keep)
}

// recordPlans writes a history entry for each target planned now (fresh), with the verdict
// v (zero when the policy was not judged).
func (w *Workflow) recordPlans(ctx context.Context, ev event.Event, pr *forge.PullRequest, results []planned, fresh []bool, v verdict) {
	base := judged(entryOf(history.Plan, ev, pr, pr.HeadSHA, ev.Sender), v)
	for i, p := range results {
		if fresh[i] {
			w.record(ctx, planEntry(base, p))
		}
	}
}

// planTargets plans each target, in the order given; clusters side by side (see byCluster).
func (w *Workflow) planTargets(ctx context.Context, co *checkout, targets []target, pr policy.PRInfo, log *slog.Logger) []planned {
	out := make([]planned, len(targets))
	_ = byCluster(targets, func(i int, t target) error { // planTarget reports failures in its result
		out[i] = w.planTarget(ctx, co, t, pr, log)
		return nil
	})
	return out
}

// wheres names targets for texts.
func wheres(ts []target) []comments.Where {
	out := make([]comments.Where, len(ts))
	for i, t := range ts {
		out[i] = t.where()
	}
	return out
}

// publish writes the plan comment: the earlier kubeplan comment is updated in place, extra
// parts are added or deleted, so superseded output never looks current. With create false,
// nothing is posted when there is no earlier comment.
func (w *Workflow) publish(ctx context.Context, f Forge, pr *forge.PullRequest, in comments.Input, create bool) error {
	existing, err := f.Comments(ctx, pr.Repo, pr.Number)
	if err != nil {
		return err
	}
	self, err := f.Self(ctx)
	if err != nil {
		return err
	}
	var ours []forge.Comment // by part number; a marker in someone else's comment is not ours
	for _, c := range existing {
		if part, _, ok := comments.ParsePart(c.Body); ok && c.Author == self {
			for len(ours) < part {
				ours = append(ours, forge.Comment{})
			}
			if ours[part-1].ID == 0 {
				ours[part-1] = c
			}
		}
	}
	if len(ours) == 0 && !create {
		return nil
	}
	bodies := comments.Render(in)
	for i, body := range bodies {
		if i < len(ours) && ours[i].ID != 0 {
			if ours[i].Body == body {
				continue
			}
			if err := f.UpdateComment(ctx, pr.Repo, pr.Number, ours[i].ID, body); err != nil {
				return err
			}
			continue
		}
		if _, err := f.CreateComment(ctx, pr.Repo, pr.Number, body); err != nil {
			return err
		}
	}
	for _, c := range ours[min(len(bodies), len(ours)):] {
		if c.ID != 0 {
			if err := f.DeleteComment(ctx, pr.Repo, pr.Number, c.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// commentTargets is the planned targets as the plan comment shows them: the one place where
// workflow's targets become package comments' input.
func commentTargets(ps []planned) []comments.Target {
	out := make([]comments.Target, 0, len(ps))
	for _, p := range ps {
		out = append(out, comments.Target{Project: p.project.Name, Cluster: p.cluster, Plan: p.plan, Err: p.err})
	}
	return out
}
