// Package workflow ties a pull-request event to kubeplan's work: which projects it touches,
// planning them on their clusters, gating the merge on policy, applying on /apply and rolling
// out on merge, and telling the pull request through comments and commit statuses. It knows
// the forge, the state store and the clusters only through small interfaces and packages;
// each kind of event has its own file.
package workflow

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/kubeplan/kubeplan/access"
	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/archive"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/commands"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/render"
	"github.com/kubeplan/kubeplan/store"
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
	// Reviews lists reviews oldest first; Permission is a user's access to the repository;
	// IsMember answers for a GitHub team ("org/slug") or a GitLab group path.
	Reviews(ctx context.Context, repo string, number int) ([]forge.Review, error)
	Permission(ctx context.Context, repo, user string) (forge.Permission, error)
	// PermissionName words a permission as the forge does ("Reporter" on GitLab).
	PermissionName(p forge.Permission) string
	IsMember(ctx context.Context, team, user string) (bool, error)
}

// State is what the workflow remembers between events (package store implements it).
type State interface {
	SavePlan(ctx context.Context, pr string, r store.PlanRecord) error
	Plans(ctx context.Context, pr string) ([]store.PlanRecord, error)
	DeletePlans(ctx context.Context, pr string, keep []store.Target) error
	Acquire(ctx context.Context, l store.Lock) (held store.Lock, acquired bool, err error)
	LockOf(ctx context.Context, repo string, t store.Target) (store.Lock, bool, error)
	Locks(ctx context.Context, repo string) ([]store.Lock, error)
	Unlock(ctx context.Context, repo string, t store.Target) (bool, error)
	ReleasePR(ctx context.Context, pr string) ([]store.Lock, error)
	StartApply(ctx context.Context, r store.ApplyRecord) (int64, error)
	FinishApply(ctx context.Context, id int64, state, summary, report string) error
	MarkReported(ctx context.Context, id int64) error
	Applies(ctx context.Context, pr string) ([]store.ApplyRecord, error)
	Interrupted(ctx context.Context, pr string) ([]store.ApplyRecord, error)
	RecordApproval(ctx context.Context, pr, reviewer, sha string) error
	ForgetApproval(ctx context.Context, pr, reviewer string) error
	ApprovalSHAs(ctx context.Context, pr string) (map[string]string, error)
	RecordMergeGroup(ctx context.Context, pr string, c store.MergeGroupCheck) error
	MergeGroup(ctx context.Context, pr, sha string) (store.MergeGroupCheck, bool, error)
	// AppendHistory appends an entry to the audit history (package history) and returns it
	// as stored.
	AppendHistory(ctx context.Context, e history.Entry) (history.Entry, error)
}

// Forges returns the forge client that can act on an event (e.g. its GitHub App installation).
type Forges func(ctx context.Context, ev event.Event) (Forge, error)

// Workflow handles queued events.
type Workflow struct {
	Forges    Forges
	Clusters  *cluster.Pool
	Planner   *planner.Planner
	Applier   *applier.Applier
	Checkouts *archive.Cache
	State     State
	// Policy is the server's policy, compiled once at start; each event extends it with the
	// rules a repository's .kubeplan.yaml may add (where allowedOverrides lets it). Nil is
	// the empty policy.
	Policy *policy.Policy
	// Access says which repositories may deploy to which clusters and namespaces; nil lets
	// every repository deploy everywhere.
	Access access.Rules
	// HealthTimeout bounds the wait for applied objects to become healthy.
	HealthTimeout time.Duration
	// MergeableWait is how long /apply waits for the forge to compute mergeability.
	MergeableWait time.Duration
	// ObserveApply, when set, hears of every finished apply (for metrics).
	ObserveApply func(trigger, outcome string, took time.Duration)
	// ObserveHistoryFailure, when set, hears of every history entry the store did not take
	// (for metrics); the work it records is not affected.
	ObserveHistoryFailure func(kind history.Kind)
	Log                   *slog.Logger
	// PlanDrafts plans draft pull requests (a repository may still say drafts: skip).
	PlanDrafts bool
	// Render renders a project of a checkout; nil means render.Render in this process. The
	// server renders in bounded child processes (package isolate).
	Render func(ctx context.Context, repoRoot, dir string, opts render.Options) (*render.Result, error)
}

// Handle does the work for one event.
func (w *Workflow) Handle(ctx context.Context, ev event.Event) error {
	switch ev.Kind {
	case event.PullRequest:
		switch ev.Action {
		case event.Opened, event.Pushed, event.Ready:
			return w.plan(ctx, ev, selection{})
		case event.Closed, event.Merged:
			return w.closed(ctx, ev)
		}
		w.Log.Info("pull request event needs no work", "repo", ev.Repo, "number", ev.Number, "action", ev.Action)
		return nil
	case event.Comment:
		return w.command(ctx, ev)
	case event.Review:
		return w.review(ctx, ev)
	case event.MergeGroup:
		return w.mergeGroup(ctx, ev)
	default:
		w.Log.Info("event not handled", "kind", ev.Kind, "repo", ev.Repo, "number", ev.Number)
		return nil
	}
}

// selection narrows a command to projects and clusters (-p, -c); empty selects all.
type selection struct{ project, cluster string }

func (s selection) matches(project, cluster string) bool {
	return (s.project == "" || s.project == project) && (s.cluster == "" || s.cluster == cluster)
}

func (s selection) String() string { return comments.Selection(s.project, s.cluster) }

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
	sel := selection{project: cmd.Project, cluster: cmd.Cluster}
	var cmdErr *commands.Error
	switch {
	case errors.As(parseErr, &cmdErr):
		log.Info("bad command", "reason", cmdErr.Reason)
		return reply(ctx, f, ev, comments.BadCommand(cmdErr.Reason, commands.Help))
	case cmd.Name == "help":
		return reply(ctx, f, ev, comments.Help(commands.Help))
	case cmd.Name == "plan":
		log.Info("plan requested", "selection", sel)
		if refusal, err := w.mayPlan(ctx, f, ev, sel); err != nil || refusal != "" {
			if err != nil {
				return err
			}
			log.Info("plan refused", "reason", refusal)
			return reply(ctx, f, ev, comments.PlanRefused(refusal))
		}
		return w.plan(ctx, ev, sel)
	case cmd.Name == "apply":
		log.Info("apply requested", "selection", sel)
		return w.apply(ctx, f, ev, sel)
	case cmd.Name == "unlock":
		log.Info("unlock requested", "selection", sel)
		return w.unlock(ctx, f, ev, sel)
	}
	return reply(ctx, f, ev, comments.NotHandled(cmd.Name))
}

// pullRequest returns the forge client for an event and the pull request as the forge sees it now.
func (w *Workflow) pullRequest(ctx context.Context, ev event.Event) (Forge, *forge.PullRequest, error) {
	f, err := w.Forges(ctx, ev)
	if err != nil {
		return nil, nil, err
	}
	pr, err := f.PullRequest(ctx, ev.Repo, ev.Number)
	if err != nil {
		return nil, nil, err
	}
	return f, pr, nil
}

// mayPlan checks that the commenter has the read role (every push plans anyway; this keeps
// strangers on a public repository from making kubeplan work for them). Roles come from the
// server's policy only.
func (w *Workflow) mayPlan(ctx context.Context, f Forge, ev event.Event, sel selection) (refusal string, err error) {
	pol := w.Policy
	perm, err := f.Permission(ctx, ev.Repo, ev.Sender)
	if err != nil {
		return "", err
	}
	err = pol.AuthorizeRequest(ctx, f, policy.Request{User: ev.Sender, Permission: perm, Repo: ev.Repo,
		Project: sel.project, Cluster: sel.cluster, Need: policy.RoleRead, Command: "/plan", PermissionName: f.PermissionName})
	if r, ok := policy.IsRefusal(err); ok {
		return r.Message, nil
	}
	return "", err
}

// public is an error as a pull request, a commit status or the store may show it: without
// the clusters' apiserver addresses, kubeconfig paths and credentials (logs keep them).
func (w *Workflow) public(err error) string {
	return w.Clusters.Redact(err.Error())
}

// reply answers the sender of an event in a new comment.
func reply(ctx context.Context, f Forge, ev event.Event, body string) error {
	_, err := f.CreateComment(ctx, ev.Repo, ev.Number, comments.Reply(ev.Sender, body))
	return err
}

// prKey names a pull request in the state store; repoKey names its repository.
func prKey(ev event.Event) string { return ev.Key() }

func repoKey(ev event.Event) string { return string(ev.Forge) + ":" + ev.Repo }
