// Package workflow ties a pull-request event to kubeplan's work: which projects it touches,
// planning them on their clusters, and telling the pull request through one comment and
// commit statuses. It knows the forge only through the small interface below.
package workflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/kubeplan/kubeplan/archive"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/commands"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/render"
	"github.com/kubeplan/kubeplan/repoconfig"
)

// Forge is what the workflow needs from GitHub or GitLab.
type Forge interface {
	PullRequest(ctx context.Context, repo string, number int) (*forge.PullRequest, error)
	ChangedFiles(ctx context.Context, repo string, number int) ([]string, error)
	Archive(ctx context.Context, repo, sha string) (io.ReadCloser, error)
	Comments(ctx context.Context, repo string, number int) ([]forge.Comment, error)
	CreateComment(ctx context.Context, repo string, number int, body string) (int64, error)
	UpdateComment(ctx context.Context, repo string, number int, id int64, body string) error
	DeleteComment(ctx context.Context, repo string, number int, id int64) error
	SetStatus(ctx context.Context, repo, sha string, s forge.Status) error
	MaxCommentLength() int
	// Self is the login kubeplan comments as.
	Self(ctx context.Context) (string, error)
	React(ctx context.Context, repo string, number int, commentID int64, reaction string) error
}

// Forges returns the forge client that can act on an event (e.g. its GitHub App installation).
type Forges func(ctx context.Context, ev event.Event) (Forge, error)

// StatusPlan is the commit status carrying the plan's outcome.
const StatusPlan = "kubeplan/plan"

// Workflow handles queued events.
type Workflow struct {
	Forges    Forges
	Clusters  *cluster.Pool
	Planner   *planner.Planner
	Checkouts *archive.Cache
	Log       *slog.Logger
	// PlanDrafts plans draft pull requests (a repository may still say drafts: skip).
	PlanDrafts bool
}

// Commands is the footer of every plan comment: only what works today is named.
var Commands = []string{"`/plan` plans again · `/help` lists the commands · every push to this branch plans it again."}

// Handle does the work for one event.
func (w *Workflow) Handle(ctx context.Context, ev event.Event) error {
	switch ev.Kind {
	case event.PullRequest:
		switch ev.Action {
		case "opened", "reopened", "synchronize", "ready_for_review", "open", "reopen", "update":
			return w.plan(ctx, ev)
		}
		w.Log.Info("pull request event needs no plan", "repo", ev.Repo, "number", ev.Number, "action", ev.Action)
		return nil
	case event.Comment:
		return w.command(ctx, ev)
	default:
		w.Log.Info("event not handled yet", "kind", ev.Kind, "repo", ev.Repo, "number", ev.Number)
		return nil
	}
}

// command answers a comment that is a kubeplan command; other comments, and kubeplan's own,
// are ignored.
func (w *Workflow) command(ctx context.Context, ev event.Event) error {
	cmd, isCommand, parseErr := commands.Parse(ev.CommentBody)
	if !isCommand || ev.SenderIsBot {
		return nil
	}
	f, err := w.Forges(ctx, ev)
	if err != nil {
		return err
	}
	if self, err := f.Self(ctx); err != nil {
		return err
	} else if ev.Sender == self {
		return nil
	}
	log := w.Log.With("repo", ev.Repo, "number", ev.Number, "sender", ev.Sender)
	// Acknowledge at once; the answer follows.
	if err := f.React(ctx, ev.Repo, ev.Number, ev.CommentID, "eyes"); err != nil {
		log.Warn("acknowledge command", "err", err)
	}
	reply := func(body string) error {
		_, err := f.CreateComment(ctx, ev.Repo, ev.Number, fmt.Sprintf("@%s %s", ev.Sender, body))
		return err
	}
	var cmdErr *commands.Error
	switch {
	case errors.As(parseErr, &cmdErr):
		log.Info("bad command", "reason", cmdErr.Reason)
		return reply(cmdErr.Reason + "\n\n" + commands.Help)
	case cmd.Name == "help":
		return reply("kubeplan commands:\n\n" + commands.Help + "\n\nEvery push also plans the pull request again.")
	case cmd.Name == "plan":
		log.Info("plan requested")
		return w.plan(ctx, ev)
	default:
		return reply(fmt.Sprintf("`/%s` is not available on this kubeplan yet: it plans pull requests; applying and locks come in a later release.", cmd.Name))
	}
}

// plan plans every project the pull request touches on each of its clusters and updates the
// pull request's plan comment and status.
func (w *Workflow) plan(ctx context.Context, ev event.Event) error {
	f, err := w.Forges(ctx, ev)
	if err != nil {
		return err
	}
	pr, err := f.PullRequest(ctx, ev.Repo, ev.Number)
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
	status := func(state forge.State, desc string) error {
		return f.SetStatus(ctx, ev.Repo, pr.HeadSHA, forge.Status{Context: StatusPlan, State: state, Description: clip(desc, 140)})
	}
	if err := status(forge.Pending, "Planning…"); err != nil {
		return err
	}

	in, err := w.targets(ctx, f, pr, log)
	var cfgErr *repoconfig.Error
	switch {
	case errors.As(err, &cfgErr):
		// A bad .kubeplan.yaml is the author's to fix: say so on the pull request.
		in = comments.Input{Targets: []comments.Target{{Project: "(configuration)", Cluster: "-", Err: cfgErr.Error()}}}
	case errors.Is(err, errDraftSkipped):
		log.Info("draft pull request: not planning (repository setting)")
		return status(forge.Success, "Draft: planning waits until ready for review")
	case err != nil:
		_ = status(forge.Error, "kubeplan could not plan: "+err.Error())
		return err
	}
	in.HeadSHA, in.Commands, in.Limit = pr.HeadSHA, Commands, f.MaxCommentLength()

	if len(in.Targets) == 0 {
		// Nothing to plan: update an earlier plan comment so it does not look current.
		if err := w.publish(ctx, f, pr, in, false); err != nil {
			_ = status(forge.Error, "kubeplan could not update its comment: "+err.Error())
			return err
		}
		return status(forge.Success, "No project is affected by this change")
	}
	if err := w.publish(ctx, f, pr, in, true); err != nil {
		// Never leave the status pending: a pending status would block the merge silently.
		_ = status(forge.Error, "kubeplan could not post the plan: "+err.Error())
		return err
	}
	state, desc := summarize(in.Targets)
	log.Info("planned", "targets", len(in.Targets), "result", desc)
	return status(state, desc)
}

var errDraftSkipped = errors.New("draft skipped by repository configuration")

// targets checks out the head, finds affected projects and plans each on its clusters.
func (w *Workflow) targets(ctx context.Context, f Forge, pr *forge.PullRequest, log *slog.Logger) (comments.Input, error) {
	var in comments.Input
	files, err := f.ChangedFiles(ctx, pr.Repo, pr.Number)
	if err != nil {
		return in, err
	}
	dir, err := w.Checkouts.Checkout(ctx, pr.Repo, pr.HeadSHA, func(ctx context.Context) (io.ReadCloser, error) {
		return f.Archive(ctx, pr.Repo, pr.HeadSHA)
	})
	if err != nil {
		return in, err
	}
	cfg, err := repoconfig.Load(os.DirFS(dir))
	if err != nil {
		return in, err
	}
	if pr.Draft && cfg.Drafts == "skip" {
		return in, errDraftSkipped
	}
	if cfg.Discovered {
		in.Notes = append(in.Notes, "No `.kubeplan.yaml`: projects were discovered from the repository layout.")
	}
	for _, p := range cfg.Affected(files) {
		clusters := p.Clusters
		if len(clusters) == 0 {
			clusters = []string{w.Clusters.Registry().Default}
		}
		for _, name := range clusters {
			in.Targets = append(in.Targets, w.planTarget(ctx, dir, p, name, log))
		}
	}
	return in, nil
}

// planTarget renders and plans one project on one cluster; failures become the target's
// one-line error, never a stack trace.
func (w *Workflow) planTarget(ctx context.Context, dir string, p repoconfig.Project, clusterName string, log *slog.Logger) comments.Target {
	t := comments.Target{Project: p.Name, Cluster: clusterName}
	client, err := w.Clusters.Get(ctx, clusterName)
	if err != nil {
		t.Err = err.Error()
		log.Warn("cluster unavailable", "project", p.Name, "cluster", clusterName, "err", err)
		return t
	}
	renderer, _ := render.ParseRenderer(p.Renderer)
	ns := p.Namespace
	if ns == "" {
		ns = "default"
	}
	res, err := render.Render(ctx, dir, p.Dir, render.Options{Renderer: renderer, Namespace: ns,
		HelmRelease: p.Helm.Release, ValuesFiles: p.Helm.Values, KubeVersion: client.Version})
	if err != nil {
		t.Err = "render " + p.Dir + ": " + err.Error()
		log.Info("render failed", "project", p.Name, "err", err)
		return t
	}
	pl, err := w.Planner.Plan(ctx, client, planner.Request{Project: p.Name, Objects: res.Objects, Notes: res.Notes,
		Renderer: string(res.Renderer), Namespace: ns})
	if err != nil {
		t.Err = err.Error()
		log.Warn("plan failed", "project", p.Name, "cluster", clusterName, "err", err)
		return t
	}
	t.Plan = pl
	return t
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

// summarize turns the targets into the plan status and its one-line description.
func summarize(targets []comments.Target) (forge.State, string) {
	var create, change, del, failing int
	var errs []string
	for _, t := range targets {
		if t.Plan == nil {
			errs = append(errs, t.Cluster+"/"+t.Project+": "+t.Err)
			continue
		}
		c := t.Plan.Counts()
		create, change, del, failing = create+c.Create, change+c.Update, del+c.Delete, failing+c.Fail
	}
	switch {
	case len(errs) > 0:
		return forge.Failure, errs[0]
	case failing > 0:
		return forge.Failure, fmt.Sprintf("%d object(s) would fail to apply", failing)
	}
	return forge.Success, fmt.Sprintf("%d to create, %d to change, %d to delete", create, change, del)
}

// clip shortens s to at most n characters (forges cap status descriptions at 140).
func clip(s string, n int) string {
	r := []rune(strings.ReplaceAll(s, "\n", " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}
