package comments

import (
	"fmt"
	"strings"
)

// The texts of a merge, a closing and a merge queue's check: what was rolled out or why not,
// and what kubeplan leaves behind.

// ClosedUnmerged tells a pull request closed without merging which locks it released and which
// of its applies are live but not merged.
func ClosedUnmerged(released []Where, live []Run) string {
	var b strings.Builder
	b.WriteString("### kubeplan: closed without merging\n\n")
	if len(released) > 0 {
		b.WriteString("Released the locks of this pull request: " + List(released) + ".\n\n")
	}
	if len(live) > 0 {
		b.WriteString("⚠️ These applies made before merge are **live but not merged** — the default branch does not describe them:\n\n")
		for _, r := range live {
			fmt.Fprintf(&b, "- %s: applied `%s` by @%s (%s)\n", r.Where, abbrev(r.SHA), r.Actor, r.State)
		}
		b.WriteString("\nTo return them to the default branch, open a pull request that touches these projects and `/apply` it, or revert by hand.\n")
	}
	return b.String()
}

// LocksReleased tells a merged pull request which locks it released.
func LocksReleased(released []Where) string {
	return "kubeplan released the locks of this pull request: " + List(released) + "."
}

// ResumedNote heads a roll-out's result when an earlier apply of the project was interrupted.
func ResumedNote(sha, trigger string) string {
	return fmt.Sprintf("kubeplan stopped during an earlier apply of this project (`%s`, %s): it planned again against the live state and applied what is left.",
		abbrev(sha), strings.ReplaceAll(trigger, "_", " "))
}

// RolloutBadConfig: the merged commit's configuration is broken, so nothing rolls out.
func RolloutBadConfig(err string) string {
	return "### ❌ kubeplan did not roll out this merge\n\n" + err
}

// RolloutLocked: another pull request holds the target's lock.
func RolloutLocked(w Where, l Lock) string {
	return fmt.Sprintf("### ⏸ kubeplan did not roll out %s\n\n#%d holds the lock there (applied before merge by @%s): rolling out now would undo that apply. "+
		"When #%d merges, its roll-out includes this change; if it is closed instead, `/unlock` it and push or comment `/plan` on a pull request for this project.",
		w, l.Number, l.Holder, l.Number)
}

// RolloutUnplanned: the merged commit could not be planned on the target.
func RolloutUnplanned(w Where, sha, err string) string {
	return fmt.Sprintf("### ❌ kubeplan could not roll out %s at `%s`\n\n%s", w, abbrev(sha), codeBlock(err))
}

// RolloutDenied: the merged manifests break deny rules.
func RolloutDenied(w Where, sha string, denials []string) string {
	return fmt.Sprintf("### ⛔ kubeplan did not roll out %s at `%s`\n\nThe merged manifests break deny rules:\n\n- %s\n", w, abbrev(sha), strings.Join(denials, "\n- "))
}

// RolloutDestructive: the roll-out's destructive deletions are refused (see DestructiveNotAllowed…).
func RolloutDestructive(w Where, sha, refusal string) string {
	return fmt.Sprintf("### 💥 kubeplan did not roll out %s at `%s`\n\n%s\n", w, abbrev(sha), refusal)
}

// RolloutRefused: the merge does not satisfy the policy /apply enforces.
func RolloutRefused(w Where, sha string, reasons []string) string {
	return fmt.Sprintf("### ⛔ kubeplan did not roll out %s at `%s`\n\nThis merge does not satisfy the policy that `/apply` enforces, so nothing was applied:\n\n- %s\n\n"+
		"The change is on the default branch but not on the cluster. The next pull request that touches this project plans the cluster against the default branch, so its plan shows this change too; applying or merging it with the policy satisfied rolls it out.\n",
		w, abbrev(sha), strings.Join(reasons, "\n- "))
}

// MergedByApp refuses the roll-out of a merge by an app's account that kubeplan did not check
// as a merge-queue group (checked false), or found wanting (summary says why).
func MergedByApp(merger, sha string, checked bool, summary string) string {
	reason := fmt.Sprintf("@%s is an app's account: kubeplan rolls out a merge by an app only when it checked that very commit (`%s`) as this pull request's merge-queue group and found the policy satisfied there", merger, abbrev(sha))
	if checked {
		reason += "; it did not: " + summary
	}
	return reason
}

// MergeGroupRefused tells a pull request that the merge queue's commit for it is not what was
// reviewed and approved.
func MergeGroupRefused(sha string, reasons []string) string {
	return fmt.Sprintf("### ⛔ kubeplan: the merge queue's commit `%s` is not what was reviewed and approved here\n\n- %s\n\n"+
		"kubeplan/plan, kubeplan/policy and kubeplan/apply on that commit say so; where the queue requires them, it does not merge it.\n",
		abbrev(sha), strings.Join(reasons, "\n- "))
}

// The reasons a merge queue's commit is not the plan reviewed.

// GroupUnplanned: the commit cannot be planned on the target.
func GroupUnplanned(w Where, sha, err string) string {
	return fmt.Sprintf("%s cannot be planned at `%s`: %s", w, abbrev(sha), err)
}

// GroupWouldFail: objects of the commit's plan would fail to apply.
func GroupWouldFail(w Where, n int) string {
	return fmt.Sprintf("%s: %d object(s) would fail to apply", w, n)
}

// NotReviewed: no plan of the target was reviewed at the pull request's head.
func NotReviewed(w Where, number int, head string) string {
	return fmt.Sprintf("%s was not planned and reviewed at #%d's head `%s`", w, number, abbrev(head))
}

// GroupDiffers: the commit's plan is not the one reviewed.
func GroupDiffers(w Where, head string) string {
	return fmt.Sprintf("%s: the plan of the merge queue's commit differs from the one reviewed at `%s` "+
		"(the queue carries other changes to it, or the live objects changed): re-plan the pull request (`/plan`) and review it again", w, abbrev(head))
}

// GiveUp is an event kubeplan gave up on: every attempt at it stopped kubeplan.
type GiveUp struct {
	Kind    string // the event's kind: pull_request, comment, review…
	Action  string
	HeadSHA string // of a pull request event, when known
	Comment string // a comment's body
	Sender  string
	Reason  string
}

// GaveUp tells the pull request that kubeplan gave up on one of its events.
func GaveUp(g GiveUp) string {
	var what string
	switch g.Kind {
	case "pull_request":
		what = fmt.Sprintf("the %s event of this pull request", g.Action)
		if g.HeadSHA != "" {
			what += fmt.Sprintf(" (head %.7s)", g.HeadSHA)
		}
	case "comment":
		first, _, _ := strings.Cut(strings.TrimSpace(g.Comment), "\n")
		if r := []rune(strings.ReplaceAll(first, "`", "'")); len(r) > 80 {
			first = string(r[:79]) + "…"
		} else {
			first = string(r)
		}
		what = fmt.Sprintf("`%s` from @%s", first, g.Sender)
	default:
		what = fmt.Sprintf("the %s %s by @%s", g.Kind, g.Action, g.Sender)
	}
	return fmt.Sprintf("kubeplan gave up on %s: %s.\n\nSomething in this pull request may make kubeplan crash or hang; "+
		"kubeplan's log names the job. Push a new commit or comment `/plan` to try again.", what, g.Reason)
}
