package workflow

import (
	"fmt"
	"strings"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/store"
)

// The decisions of /apply, of the merge queue's check and of the roll-out on merge, as pure
// functions of records: the store's plan and apply records, the plans made now and the
// policy's refusals in, a decision out. The reading, planning and posting around them is in
// apply.go, mergegroup.go and merge.go; decide_test.go tables them.

// planCheck is how a target's plan made now stands against the plan that was reviewed.
type planCheck int

const (
	planOK          planCheck = iota
	planUnplannable           // it cannot be planned now
	planNotReviewed           // no plan of it was stored at the pull request's head
	planChanged               // it differs from the one reviewed (another hash)
	planFailing               // objects would fail to apply
	planDenied                // a deny rule stops it
	planConflicting           // it takes over other field managers' fields without apply.force
)

// stale says the plan is no longer the one reviewed: /apply plans again instead of refusing.
func (c planCheck) stale() bool { return c == planNotReviewed || c == planChanged }

// reviewedPlans indexes a pull request's stored plans by target (one each: the latest).
func reviewedPlans(records []store.PlanRecord) map[store.Target]store.PlanRecord {
	out := map[store.Target]store.PlanRecord{}
	for _, r := range records {
		out[r.Target] = r
	}
	return out
}

// applyCheck is /apply's freshness check of one target's plan made now: what is applied must
// be exactly the plan reviewed at the head, and one that would fail, break a deny rule or take
// over other managers' fields without force is not applied.
func applyCheck(p planned, reviewed map[store.Target]store.PlanRecord, head string) planCheck {
	rec, ok := reviewed[p.key()]
	switch {
	case p.plan == nil:
		return planUnplannable
	case !ok || rec.SHA != head:
		return planNotReviewed
	case rec.Hash != p.plan.Hash():
		return planChanged
	case p.plan.Counts().Fail > 0:
		return planFailing
	case len(p.plan.Denials()) > 0:
		return planDenied
	case !p.project.Apply.Force && len(conflicts(p.plan)) > 0:
		return planConflicting
	}
	return planOK
}

// applyFreshness is /apply's freshness check of every target (see applyCheck): the stale ones
// are planned again rather than applied, the others named in refusals are refused.
func applyFreshness(fresh []planned, records []store.PlanRecord, head string) (stale, refusals []string) {
	reviewed := reviewedPlans(records)
	for _, p := range fresh {
		switch c := applyCheck(p, reviewed, head); {
		case c == planOK:
		case c.stale():
			stale = append(stale, applyCheckText(p, c, head))
		default:
			refusals = append(refusals, applyCheckText(p, c, head))
		}
	}
	return stale, refusals
}

// groupCheck is the merge queue's check of one target of its commit: plannable, nothing
// failing, and the very plan reviewed at the pull request's head.
func groupCheck(p planned, reviewed map[store.Target]store.PlanRecord, head string) planCheck {
	rec, ok := reviewed[p.key()]
	switch {
	case p.plan == nil:
		return planUnplannable
	case p.plan.Counts().Fail > 0:
		return planFailing
	case !ok || rec.SHA != head:
		return planNotReviewed
	case rec.Hash != p.plan.Hash():
		return planChanged
	}
	return planOK
}

// groupPlan is kubeplan/plan of a merge queue's commit sha for pull request number (head is
// its head): the state, the description and every problem (see groupCheck).
func groupPlan(plans []planned, records []store.PlanRecord, number int, head, sha string) (state forge.State, desc string, problems []string) {
	reviewed := reviewedPlans(records)
	for _, p := range plans {
		if c := groupCheck(p, reviewed, head); c != planOK {
			problems = append(problems, groupCheckText(p, c, number, head, sha))
		}
	}
	switch {
	case len(plans) == 0:
		return forge.Success, "No project is affected by this change", problems
	case len(problems) > 0:
		return forge.Failure, fmt.Sprintf("Not the plan reviewed on #%d: %s", number, problems[0]), problems
	}
	return forge.Success, fmt.Sprintf("Matches the plan reviewed on #%d (%d target(s))", number, len(plans)), nil
}

// applyProgress is where a pull request's head stands with its applies before merge, each
// target named "project on cluster": the latest apply failed, is missing though the project
// requires one before merge, or succeeded.
type applyProgress struct {
	failed, missing, done []string
}

// progressOf reads the apply history for the targets at head. Only applies before merge count:
// a roll-out is no apply of the head.
func progressOf(history []store.ApplyRecord, head string, targets []target) applyProgress {
	latest := map[store.Target]store.ApplyRecord{}
	for _, r := range history {
		if r.SHA == head && r.Trigger == store.BeforeMerge {
			latest[r.Target] = r
		}
	}
	var a applyProgress
	for _, t := range targets {
		r, applied := latest[t.key()]
		name := t.project.Name + " on " + t.cluster
		switch {
		case applied && r.State == store.ApplyFailed:
			a.failed = append(a.failed, name)
		case applied && r.State == store.ApplySucceeded:
			a.done = append(a.done, name)
		case t.project.BeforeMerge() == "required":
			a.missing = append(a.missing, name)
		}
	}
	return a
}

// status is kubeplan/apply for the progress: failure when an apply failed, pending while a
// required one is missing.
func (a applyProgress) status() forge.Status {
	st := forge.Status{Context: StatusApply}
	switch {
	case len(a.failed) > 0:
		st.State, st.Description = forge.Failure, "Apply failed: "+strings.Join(a.failed, ", ")
	case len(a.missing) > 0:
		st.State, st.Description = forge.Pending, "Needs /apply before merge: "+strings.Join(a.missing, ", ")
	case len(a.done) > 0:
		st.State, st.Description = forge.Success, "Applied: "+strings.Join(a.done, ", ")
	default:
		st.State, st.Description = forge.Success, "No project needs applying before merge"
	}
	st.Description = clip(st.Description, 140)
	return st
}

// appliedBefore says whether delivery (an /apply comment, a merge) already applied something: its
// job is running again. A job without a delivery never ran before.
func appliedBefore(history []store.ApplyRecord, delivery string) bool {
	for _, r := range history {
		if delivery != "" && r.Delivery == delivery {
			return true
		}
	}
	return false
}

// rolloutStep is what a merge's roll-out decides for one target before it touches anything.
type rolloutStep struct {
	target
	// done: an earlier run of this merge's job finished it (applied, failed or refused); it
	// is not applied again.
	done bool
	// refused are the policy's reasons not to roll it out (see rolloutRefusals): the refusal
	// is recorded and reported instead.
	refused []string
}

// rolloutPlan decides the roll-out of targets (those that roll out on merge, in configuration
// order; byCluster keeps that order on each cluster): which an earlier run of the same
// delivery finished, which the policy refuses, and the rest, which are rolled out.
func rolloutPlan(targets []target, history []store.ApplyRecord, delivery string, refusals map[store.Target][]string) []rolloutStep {
	finished := map[store.Target]bool{}
	for _, r := range history {
		if delivery != "" && r.Delivery == delivery && (r.State == store.ApplySucceeded || r.State == store.ApplyFailed || r.State == store.ApplyRefused) {
			finished[r.Target] = true
		}
	}
	out := make([]rolloutStep, len(targets))
	for i, t := range targets {
		out[i] = rolloutStep{target: t, done: finished[t.key()]}
		if !out[i].done {
			out[i].refused = refusals[t.key()]
		}
	}
	return out
}

// rolloutFailures names the targets a roll-out of the merge commit sha did not roll out:
// those this run refused or could not apply (results, see applyAll), then those whose latest
// on-merge apply at sha did not succeed (an interrupted apply run again counts by its rerun).
// The policy's refusals say so.
func rolloutFailures(targets []target, results []string, history []store.ApplyRecord, sha string) []string {
	var failed []string
	named := map[string]bool{}
	fail := func(name string) {
		failed = append(failed, name)
		named[name] = true
	}
	for i, t := range targets {
		switch name := t.project.Name + " on " + t.cluster; results[i] {
		case store.ApplyRefused:
			fail(name + " (refused by policy)")
		case notApplied:
			fail(name)
		}
	}
	latest := map[store.Target]store.ApplyRecord{}
	for _, r := range history {
		if r.SHA == sha && r.Trigger == store.OnMerge {
			latest[r.Target] = r
		}
	}
	for _, t := range targets {
		name := t.project.Name + " on " + t.cluster
		switch r, ok := latest[t.key()]; {
		case !ok || r.State == store.ApplySucceeded || named[name] || named[name+" (refused by policy)"]:
		case r.State == store.ApplyRefused:
			fail(name + " (refused by policy)")
		default:
			fail(name)
		}
	}
	return failed
}

// rolloutStatus is kubeplan/apply on the merge commit after a roll-out of n targets; set is
// false when there was nothing to roll out.
func rolloutStatus(n int, failed []string) (state forge.State, desc string, set bool) {
	switch {
	case n == 0:
		return "", "", false
	case len(failed) > 0:
		return forge.Failure, "Roll-out incomplete: " + strings.Join(failed, ", "), true
	}
	return forge.Success, fmt.Sprintf("Rolled out %d project × cluster target(s)", n), true
}
