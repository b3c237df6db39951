package comments

import (
	"fmt"
	"strings"
	"time"
)

// The texts kubeplan answers commands with, and the reasons it gives for refusing them. Each
// is built from plain data here, so a pull request's every word can be read (and is pinned by
// a golden test) in this package.

// CommandsLine is the footer of every plan comment.
const CommandsLine = "`/apply [-p PROJECT] [-c CLUSTER]` applies where allowed · `/plan` plans again · `/unlock` releases this pull request's locks · `/help` lists the commands · every push plans again."

// NoConfigNote is the plan comment's note when projects were discovered, not configured.
const NoConfigNote = "No `.kubeplan.yaml`: projects were discovered from the repository layout."

// Where is a project on a cluster, as the texts name it.
type Where struct{ Project, Cluster string }

func (w Where) String() string { return fmt.Sprintf("`%s` on `%s`", w.Project, w.Cluster) }

// List names places in one line: "`web` on `prod`, `api` on `prod`".
func List(ws []Where) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, ", ")
}

// Lock is a pull request's lock on a project × cluster.
type Lock struct {
	Where
	Number   int    // the pull request holding it
	Holder   string // who applied it
	LockedAt time.Time
}

// Run is one apply of a project on a cluster.
type Run struct {
	Where
	SHA, Actor string
	State      string // succeeded, failed…
}

// ConfigTarget is the plan comment's one row when the repository's configuration is broken.
func ConfigTarget(err string) Target {
	return Target{Project: "(configuration)", Cluster: "-", Err: err}
}

// Reply answers the sender of a command.
func Reply(to, body string) string { return fmt.Sprintf("@%s %s", to, body) }

// Selection words what -p and -c chose; empty chooses all projects.
func Selection(project, cluster string) string {
	switch {
	case project != "" && cluster != "":
		return fmt.Sprintf("project %s on cluster %s", project, cluster)
	case project != "":
		return "project " + project
	case cluster != "":
		return "cluster " + cluster
	}
	return "all projects"
}

// Help answers /help; commands is package commands' Help (not imported: it parses flags).
func Help(commands string) string {
	return "kubeplan commands:\n\n" + commands + "\n\nEvery push also plans the pull request again; merging rolls out the projects that roll out on merge."
}

// BadCommand answers a command kubeplan could not read: why, then the commands (as for Help).
func BadCommand(reason, commands string) string { return reason + "\n\n" + commands }

// NotHandled answers a command this kubeplan knows but does not handle.
func NotHandled(name string) string {
	return fmt.Sprintf("`/%s` is not handled by this kubeplan.", name)
}

// PlanRefused answers a /plan its commenter may not ask for.
func PlanRefused(reason string) string { return "`/plan` refused: " + reason }

// Refused answers a command (apply, unlock) with every reason it was refused.
func Refused(command string, reasons []string) string {
	return "`/" + command + "` refused:\n\n- " + strings.Join(reasons, "\n- ")
}

// NoMatch says that -p/-c chose nothing the pull request affects, and what it does affect.
func NoMatch(selection string, affected []Where) string {
	list := List(affected)
	if len(affected) == 0 {
		list = "none"
	}
	return fmt.Sprintf("no project this pull request affects matches %s. Affected: %s.", selection, list)
}

// The reasons /apply is refused that name no project.
const (
	ApplyClosed      = "the pull request is closed. Merged changes roll out on merge."
	MergeableUnknown = "the forge has not worked out yet whether the pull request can be merged; try again in a minute"
	NotMergeable     = "the pull request cannot be merged as it is (conflicts, or blocked by the forge): fix that first"
)

// NotBeforeMerge refuses /apply of a project that is not applied before merge.
func NotBeforeMerge(w Where) string {
	return fmt.Sprintf("%s is not applied before merge (apply.before_merge: disabled): merging rolls it out", w)
}

// PolicyUnmet says the approval and deny rules do not hold, with their details. head, when
// set, is the merged head a roll-out judged.
func PolicyUnmet(head, summary string, details []string) string {
	reason := "the policy is not satisfied: " + summary
	if head != "" {
		reason = "the policy is not satisfied at the merged head `" + abbrev(head) + "`: " + summary
	}
	if len(details) > 0 {
		reason += "\n  - " + strings.Join(details, "\n  - ")
	}
	return reason
}

// Denial is one deny rule a target's plan breaks, as the policy's details list it.
func Denial(w Where, denial string) string {
	return fmt.Sprintf("%s / %s: %s", w.Cluster, w.Project, denial)
}

// The reasons a fresh plan refuses /apply.

// CannotPlanNow: the target cannot be planned at all.
func CannotPlanNow(w Where, err string) string {
	return fmt.Sprintf("%s cannot be planned now: %s", w, err)
}

// WouldFail: objects of the plan would fail to apply.
func WouldFail(w Where, n int) string {
	return fmt.Sprintf("%s: %d object(s) would fail to apply (see the plan)", w, n)
}

// DeniedBy: the plan breaks a deny rule (the first is named).
func DeniedBy(w Where, denial string) string {
	return fmt.Sprintf("%s is denied by policy: %s", w, denial)
}

// TakesOver: the plan takes over fields other field managers own, and the project does not force.
func TakesOver(w Where, conflicts []string) string {
	return fmt.Sprintf("%s would take over fields other field managers own (%s): set `apply.force: true` for project %s in .kubeplan.yaml to take them over, or leave those fields out",
		w, strings.Join(conflicts, "; "), w.Project)
}

// The reasons a plan is stale: /apply plans again instead of applying.

// NotPlannedAt: the reviewed plan was made at another head (or never).
func NotPlannedAt(w Where, head string) string {
	return fmt.Sprintf("%s was not planned at `%s`", w, abbrev(head))
}

// LiveChanged: the plan now differs from the reviewed one.
func LiveChanged(w Where) string {
	return fmt.Sprintf("%s: the live objects changed since the plan", w)
}

// Stale answers an /apply whose reviewed plan is not the plan now.
func Stale(reasons []string) string {
	return "nothing was applied: the plan that was reviewed is not the plan now.\n\n- " + strings.Join(reasons, "\n- ") +
		"\n\nThe plan comment shows the new plan; review it and comment `/apply` again."
}

// Runs names applies: "`web` on `prod` (at `abc1234`, by @dave), …".
func Runs(rs []Run) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s (at `%s`, by @%s)", r.Where, abbrev(r.SHA), r.Actor)
	}
	return strings.Join(parts, ", ")
}

// Interrupted answers an /apply when a crash left earlier applies unfinished.
func Interrupted(rs []Run) string {
	return "kubeplan stopped while applying " + Runs(rs) +
		": some objects may be applied, others not. Nothing was applied again. The plan comment now shows the live state against this pull request; review it and comment `/apply` to finish."
}

// Destructive deletions refused; what lists them, as report.Destructive words them.

// DestructiveNotAllowed: the project does not allow destructive deletions.
func DestructiveNotAllowed(w Where, what []string) string {
	return fmt.Sprintf("%s deletes more than its inventory (%s): kubeplan carries that out only for a project with `apply.allow_destructive: true` in .kubeplan.yaml (project %s has not)",
		w, strings.Join(what, "; "), w.Project)
}

// DestructiveUncovered: no approval rule asking for approvals covers the target.
func DestructiveUncovered(w Where, what []string) string {
	return fmt.Sprintf("%s deletes more than its inventory (%s), and no approval rule asking for approvals covers it: kubeplan carries out destructive deletions only where one does",
		w, strings.Join(what, "; "))
}

// DestructiveUnapproved: the approval rules are not met.
func DestructiveUnapproved(w Where, what []string, summary string) string {
	return fmt.Sprintf("%s deletes more than its inventory (%s), and its approval rules are not met: %s", w, strings.Join(what, "; "), summary)
}

// Locks.

// LockedBy refuses /apply of a target another pull request holds locked.
func LockedBy(w Where, l Lock) string {
	return fmt.Sprintf("%s is locked by #%d (applied by @%s on %s): it stays locked until #%d is merged or closed, or an admin runs `/unlock`",
		w, l.Number, l.Holder, l.LockedAt.UTC().Format("2006-01-02 15:04 MST"), l.Number)
}

// LockedOnBase refuses /apply of a target that is, under its base-branch name, locked by another pull request.
func LockedOnBase(w Where, l Lock) string {
	return fmt.Sprintf("%s is `%s` on the base branch, which #%d holds locked (applied by @%s): it stays locked until #%d is merged or closed, or an admin runs `/unlock`",
		w, l.Project, l.Number, l.Holder, l.Number)
}

// LockNote tells a plan's readers that a target is locked, by this pull request (ours) or another.
func LockNote(w Where, l Lock, ours bool) string {
	if ours {
		return fmt.Sprintf("🔒 %s is locked by this pull request (applied by @%s) until it is merged or closed.", w, l.Holder)
	}
	return fmt.Sprintf("🔒 %s is locked by #%d (applied by @%s): `/apply` there waits until #%d is merged or closed, or an admin runs `/unlock -p %s -c %s`.",
		w, l.Number, l.Holder, l.Number, w.Project, w.Cluster)
}

// NoLock answers an /unlock that chose no lock: selection is "" for this pull request's own.
func NoLock(selection string, held []Lock) string {
	what := "this pull request holds no lock"
	if selection != "" {
		what = "no lock matches " + selection
	}
	if len(held) > 0 {
		var names []string
		for _, l := range held {
			names = append(names, fmt.Sprintf("%s by #%d", l.Where, l.Number))
		}
		what += ". Locks held in this repository: " + strings.Join(names, ", ")
	}
	return what + "."
}

// UnlockNeedsAdmin refuses the release of another pull request's lock.
func UnlockNeedsAdmin(l Lock, refusal string) string {
	return fmt.Sprintf("%s is held by #%d; releasing another pull request's lock needs the admin role: %s", l.Where, l.Number, refusal)
}

// Unlocked answers an /unlock: what it released and what it was refused.
func Unlocked(released []Where, refused []string) string {
	var b strings.Builder
	if len(released) > 0 {
		fmt.Fprintf(&b, "released %s.", List(released))
	}
	if len(refused) > 0 {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(Refused("unlock", refused))
	}
	return b.String()
}

// LockReleased tells the pull request that held a lock that someone released it from another.
func LockReleased(l Lock, by string, from int) string {
	return fmt.Sprintf("@%s kubeplan's lock of this pull request on %s was released by @%s from #%d. What this pull request applied there stays live until something else is applied.",
		l.Holder, l.Where, by, from)
}

// abbrev is a commit as the texts name it.
func abbrev(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Kin is a base-branch project a pull request's project may be, and why (same name, same
// directory apps/web…).
type Kin struct{ Name, Why string }

// NewProject tells a policy's readers that a project is new, so every rule of its clusters applies.
func NewProject(project string) string {
	return fmt.Sprintf("project `%s` is new in this pull request (no project on the base branch has its name, directory, or namespace on its clusters): every rule of its clusters applies to it, whatever projects the rule names", project)
}

// Changed tells a policy's readers that a project's identity changed, so the rules of every
// base-branch project it may be apply.
func Changed(project string, was []Kin) string {
	names := make([]string, len(was))
	for i, k := range was {
		names[i] = fmt.Sprintf("`%s` (%s)", k.Name, k.Why)
	}
	return fmt.Sprintf("project `%s` has a name, directory, namespace or clusters this pull request changed; on the base branch it is %s: the rules of every one of these names apply", project, strings.Join(names, ", "))
}
