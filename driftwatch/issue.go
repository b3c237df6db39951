package driftwatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/kubeplan/kubeplan/commands"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/drift"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/repoconfig"
	"github.com/kubeplan/kubeplan/store"
)

// IssueForge is what `/apply` on a drift issue asks of a forge client besides a check's
// (the clients of forge/github and forge/gitlab are ones).
type IssueForge interface {
	Forge
	// Self is the login kubeplan writes as; FindIssue returns kubeplan's own oldest open
	// issue whose body holds marker, or nil.
	Self(ctx context.Context) (string, error)
	FindIssue(ctx context.Context, repo, marker string) (*forge.Issue, error)
	CreateIssueComment(ctx context.Context, repo string, number int, body string) error
	ReactToIssueComment(ctx context.Context, repo string, number int, commentID int64, reaction string) error
	Permission(ctx context.Context, repo, user string) (forge.Permission, error)
	PermissionName(p forge.Permission) string
	IsMember(ctx context.Context, team, user string) (bool, error)
}

// IssueCommand is a command commented on an issue that claims to be a drift issue, as the
// webhook told it.
type IssueCommand struct {
	Repository Repository
	// Number is the issue's; CommentID and Body the comment's.
	Number    int
	CommentID int64
	Body      string
	Sender    string
	// SenderIsBot is true when the forge marks the commenter as a bot.
	SenderIsBot bool
	// Marker is the drift marker the issue's body started with in the webhook: a claim,
	// checked against kubeplan's own issues on the forge.
	Marker string
}

// ApplyFromIssue answers a command on a drift issue. `/apply` by someone with the apply role
// on the issue's project × cluster, which no pull request holds locked, plans the default
// branch's head against the cluster again and applies git's state of every object that
// drifted (changed or missing, whatever its mode but ignore; extra objects are not deleted),
// records it in the apply history (trigger drift_apply, the commenter as actor), answers on
// the issue and checks again, which edits or closes the issue. Other commands get the help.
//
// The payload is anyone's word: the issue must be the one kubeplan's own account keeps for
// the marker (found again through the forge), in a repository this server watches.
// Everything else is ignored without a word.
func (w *Watcher) ApplyFromIssue(ctx context.Context, c IssueCommand) error {
	cmd, isCommand, parseErr := commands.Parse(c.Body)
	if !isCommand || c.SenderIsBot {
		return nil
	}
	log := w.Log.With("repo", c.Repository.Key(), "issue", c.Number, "sender", c.Sender)
	repo, project, clusterName, ok := comments.ParseDriftIssueMarker(c.Marker)
	if !ok || repo != c.Repository.Name || !w.watches(c.Repository) {
		log.Info("command on an issue that is no drift issue of a watched repository: ignored")
		return nil
	}
	ff, err := w.Forges(ctx, c.Repository)
	if err != nil {
		return err
	}
	f, ok := ff.(IssueForge)
	if !ok {
		return fmt.Errorf("forge %s cannot answer on drift issues", c.Repository.Forge)
	}
	if self, err := f.Self(ctx); err != nil {
		return err
	} else if c.Sender == self {
		return nil
	}
	is, err := f.FindIssue(ctx, repo, c.Marker)
	if err != nil {
		return fmt.Errorf("drift issue of %s on %s in %s: %w", project, clusterName, repo, err)
	}
	if is == nil || is.Number != c.Number || comments.DriftIssueMarkerOf(is.Body) != c.Marker {
		log.Warn("command on an issue that claims to be a drift issue but is not kubeplan's open one: ignored")
		return nil
	}
	if err := f.ReactToIssueComment(ctx, repo, c.Number, c.CommentID, "eyes"); err != nil {
		log.Warn("acknowledge command", "err", err)
	}
	where := comments.Where{Project: project, Cluster: clusterName}
	reply := func(body string) error {
		return f.CreateIssueComment(ctx, repo, c.Number, comments.Reply(c.Sender, body))
	}
	refuse := func(reasons ...string) error {
		log.Info("apply refused", "reasons", strings.Join(reasons, "; "))
		return reply(comments.Refused("apply", reasons))
	}
	// Once the target is known, a refusal is in the history too.
	var entry history.Entry
	refuseTarget := func(reasons ...string) error {
		w.record(ctx, refusedEntry(entry, reasons))
		return refuse(reasons...)
	}
	var cmdErr *commands.Error
	switch {
	case errors.As(parseErr, &cmdErr):
		return reply(comments.BadCommand(cmdErr.Reason, comments.DriftIssueHelp))
	case cmd.Name != "apply":
		return reply(comments.DriftIssueHelp)
	case (cmd.Project != "" && cmd.Project != project) || (cmd.Cluster != "" && cmd.Cluster != clusterName):
		return refuse(comments.DriftOtherTarget(comments.Selection(cmd.Project, cmd.Cluster), where))
	}
	log.Info("apply requested on the drift issue", "project", project, "cluster", clusterName)

	// The default branch's head, as a check reads it.
	_, sha, err := f.DefaultBranch(ctx, repo)
	if err != nil {
		return err
	}
	dir, err := w.Checkouts.Checkout(ctx, repo, sha, func(ctx context.Context) (io.ReadCloser, error) { return f.Archive(ctx, repo, sha) })
	if err != nil {
		return err
	}
	cfg, err := repoconfig.Load(os.DirFS(dir))
	var cfgErr *repoconfig.Error
	if errors.As(err, &cfgErr) {
		return refuse(cfgErr.Error())
	} else if err != nil {
		return err
	}
	t, found := w.targetOf(c.Repository, sha, dir, cfg, project, clusterName)
	if !found {
		return refuse(comments.DriftTargetGone(where, sha))
	}
	entry = onIssue(entryOf(history.DriftApply, t, c.Sender), is)

	// The role, from the server's policy and the rules the default branch adds, as for a
	// pull request's /apply (whose rules come from the branch it targets).
	pol, err := w.Policy.Extend(cfg.Policy)
	if err != nil {
		return refuseTarget(err.Error())
	}
	perm, err := f.Permission(ctx, repo, c.Sender)
	if err != nil {
		return err
	}
	err = pol.AuthorizeRequest(ctx, f, policy.Request{User: c.Sender, Permission: perm, Repo: repo, Project: project, Cluster: clusterName,
		Need: policy.RoleApply, Command: "/apply", PermissionName: f.PermissionName})
	if refusal, ok := policy.IsRefusal(err); ok {
		return refuseTarget(refusal.Message)
	} else if err != nil {
		return err
	}
	// A pull request's lock: the cluster is meant to differ from the default branch until it
	// is merged.
	lock, locked, err := w.State.LockOf(ctx, c.Repository.Key(), t.key())
	if err != nil {
		return err
	}
	if locked {
		return refuseTarget(comments.LockedBy(where, comments.Lock{Where: where, Number: lock.Number, Holder: lock.Holder, LockedAt: lock.LockedAt}))
	}
	// The check's lease, whatever its interval: no scheduled check runs meanwhile, and the
	// check after the apply records its result under it.
	taken, err := w.State.TakeDriftCheck(ctx, c.Repository.Key(), t.key(), w.Holder, 0, w.Lease)
	if err != nil {
		return err
	}
	if !taken {
		return refuseTarget(comments.DriftCheckRunning(where))
	}
	entry.Verdict = historyAllowed
	answer, applyErr := w.applyDrift(ctx, t, c.Sender, entry, log)
	if applyErr == nil {
		applyErr = reply(answer)
	}
	// Check again (it ends the lease): the record, the notices and the issue follow the
	// cluster as it is now. The next scheduled check does it anyway if this one fails.
	if err := w.check(context.WithoutCancel(ctx), t); err != nil {
		log.Warn("drift check after /apply", "err", err)
	}
	return applyErr
}

// applyDrift plans the target afresh and applies git's state of its drifted objects; it
// returns the answer for the issue.
func (w *Watcher) applyDrift(ctx context.Context, t target, sender string, entry history.Entry, log *slog.Logger) (string, error) {
	where := comments.Where{Project: t.project.Name, Cluster: t.cluster}
	p, err := w.plan(ctx, t)
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		reason := comments.CannotPlanNow(where, w.Clusters.Redact(err.Error()))
		w.record(ctx, refusedEntry(entry, []string{reason}))
		return comments.Refused("apply", []string{reason}), nil
	}
	want := map[string]bool{}
	extra := 0
	for _, o := range p.report.Objects {
		switch {
		case !o.Counted() || o.Mode == drift.Ignore:
		case o.State == drift.Extra:
			extra++
		default:
			want[refKey(o.Object)] = true
		}
	}
	if len(want) == 0 {
		return comments.DriftNothingToApply(where, t.sha, extra), nil
	}
	a, err := w.reapply(ctx, t, p, want, store.DriftApply, sender, entry, log)
	if err != nil {
		return "", err
	}
	return comments.DriftApplied(comments.DriftApply{Where: where, SHA: t.sha, Objects: a.objects, State: a.state, Summary: a.summary, Extra: extra}), nil
}

// watches reports whether the server checks the repository.
func (w *Watcher) watches(r Repository) bool {
	for _, x := range w.Repositories {
		if x == r {
			return true
		}
	}
	return false
}

// targetOf is the project × cluster of the default branch's configuration, if it still
// deploys that project there.
func (w *Watcher) targetOf(r Repository, sha, dir string, cfg *repoconfig.Config, project, clusterName string) (target, bool) {
	for _, p := range cfg.Projects {
		if p.Name != project {
			continue
		}
		clusters := p.Clusters
		if len(clusters) == 0 {
			clusters = []string{w.Clusters.Registry().Default}
		}
		for _, c := range clusters {
			if c == clusterName {
				return target{repo: r, sha: sha, dir: dir, cfg: cfg, project: p, cluster: c}, true
			}
		}
	}
	return target{}, false
}
