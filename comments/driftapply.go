package comments

import (
	"fmt"
	"strings"
)

// The answers to commands on a drift issue (docs/drift.md): `/apply` puts git back on the
// project × cluster the issue is about.

// DriftIssueHelp answers /help, or a command other than /apply, on a drift issue.
const DriftIssueHelp = "On a drift issue kubeplan answers `/apply`: it plans the default branch's head against the cluster again " +
	"and applies git's state of every object that drifted (changed or missing; objects whose drift mode is `ignore` are left alone). " +
	"It needs the apply role on the project and cluster, and no pull request holding them locked. " +
	"Other commands belong on pull requests."

// DriftApply is what an /apply on a drift issue did.
type DriftApply struct {
	Where
	// SHA is the default branch's commit planned and applied.
	SHA string
	// Objects are those applied again, each with what became of it ("ConfigMap
	// shop/settings: configured", or its error).
	Objects []string
	// State is succeeded or failed; Summary the apply's counts, or why it failed.
	State, Summary string
	// Extra counts objects in the cluster that git no longer has: not deleted.
	Extra int
}

// DriftApplied answers an /apply on a drift issue with its outcome.
func DriftApplied(a DriftApply) string {
	var b strings.Builder
	if a.State == "succeeded" {
		fmt.Fprintf(&b, "✅ applied git at `%s` to %s again: %d object(s), %s.", short(a.SHA), a.Where, len(a.Objects), a.Summary)
	} else {
		fmt.Fprintf(&b, "❌ applying git at `%s` to %s again failed: %s.", short(a.SHA), a.Where, a.Summary)
	}
	b.WriteString("\n\n")
	for _, o := range a.Objects {
		fmt.Fprintf(&b, "- `%s`\n", code(o))
	}
	if a.State != "succeeded" && strings.Contains(strings.Join(a.Objects, "\n"), "conflict") {
		b.WriteString("\nA field someone else changed is theirs now: applying it again conflicts unless the project sets `apply.force: true` (docs/drift.md).\n")
	}
	if a.Extra > 0 {
		fmt.Fprintf(&b, "\n%d extra object(s) not deleted: pruning is left to roll-outs.\n", a.Extra)
	}
	b.WriteString("\nkubeplan checks the cluster again now and updates this issue.")
	return b.String()
}

// DriftNothingToApply answers an /apply on a drift issue when a fresh check finds nothing to
// put back.
func DriftNothingToApply(w Where, sha string, extra int) string {
	s := fmt.Sprintf("nothing to apply: %s matches git at `%s` now", w, short(sha))
	if extra > 0 {
		s += fmt.Sprintf(", but for %d extra object(s), which `/apply` does not delete (pruning is left to roll-outs)", extra)
	}
	return s + ". kubeplan checks the cluster again now and updates this issue."
}

// The reasons an /apply on a drift issue is refused besides the role and the lock, which
// read as on a pull request (the policy's refusal, LockedBy).

// DriftCheckRunning refuses /apply while a scheduled check of the same project × cluster runs.
func DriftCheckRunning(w Where) string {
	return fmt.Sprintf("a drift check of %s is running right now: comment `/apply` again in a minute", w)
}

// DriftTargetGone refuses /apply when the default branch no longer deploys the project to the cluster.
func DriftTargetGone(w Where, sha string) string {
	return fmt.Sprintf("the default branch at `%s` no longer deploys %s: there is no git state to apply", short(sha), w)
}

// DriftOtherTarget refuses /apply with -p or -c naming another project or cluster than the issue's.
func DriftOtherTarget(selection string, w Where) string {
	return fmt.Sprintf("this issue is about %s; `/apply` here applies nothing else (%s)", w, selection)
}
