package comments_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/internal/golden"
)

// Every text kubeplan writes on a pull request besides the plan and apply comments, pinned:
// one golden file each under testdata/golden/texts (go test -update rewrites them).
func TestTextsGolden(t *testing.T) {
	const (
		sha  = "0123456789abcdef0123456789abcdef01234567"
		head = "fedcba9876543210fedcba9876543210fedcba98"
		help = "`/plan [-p PROJECT] [-c CLUSTER]` plans again · `/help` lists the commands"
	)
	web := comments.Where{Project: "web", Cluster: "prod"}
	api := comments.Where{Project: "api", Cluster: "staging"}
	other := comments.Lock{Where: web, Number: 7, Holder: "carol", LockedAt: time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))}
	destructive := []string{"Namespace web (takes down 42 objects)", "CustomResourceDefinition gizmos.example.com (takes down at least 500 objects)"}
	run := func(w comments.Where, actor, state string) comments.Run {
		return comments.Run{Where: w, SHA: sha, Actor: actor, State: state}
	}
	cases := []struct{ name, text string }{
		// Answers to commands.
		{"reply", comments.Reply("dave", "released `web` on `prod`.")},
		{"help", comments.Help(help)},
		{"bad-command", comments.BadCommand("`/aply` is not a kubeplan command.", help)},
		{"not-handled", comments.NotHandled("drift")},
		{"plan-refused", comments.PlanRefused("@mallory has no read access to acme/platform")},
		{"no-match", comments.NoMatch(comments.Selection("shop", "prod"), []comments.Where{web, api})},
		{"no-match-none", comments.NoMatch(comments.Selection("", "prod"), nil)},
		{"selections", strings.Join([]string{comments.Selection("web", "prod"), comments.Selection("web", ""), comments.Selection("", "prod"), comments.Selection("", "")}, "\n")},
		{"apply-refused", comments.Refused("apply", []string{
			comments.ApplyClosed, comments.NotBeforeMerge(web), comments.MergeableUnknown, comments.NotMergeable,
			comments.PolicyUnmet("", "1 of 2 approvals", []string{"rule prod: 1 of 2 approvals", comments.Denial(web, "images must come from registry.example.com")}),
			comments.CannotPlanNow(api, "cluster staging: connection refused"), comments.WouldFail(web, 2),
			comments.DeniedBy(web, "images must come from registry.example.com"),
			comments.TakesOver(web, []string{"Deployment web/web .spec.replicas (owned by kubectl)", "Service web/web .spec.ports (owned by helm)"}),
			comments.DestructiveNotAllowed(web, destructive), comments.DestructiveUncovered(web, destructive[:1]),
			comments.DestructiveUnapproved(web, destructive, "1 of 2 approvals"),
			comments.LockedBy(web, other), comments.LockedOnBase(api, comments.Lock{Where: comments.Where{Project: "api-old", Cluster: "staging"}, Number: 9, Holder: "erin"}),
			comments.NewProject("shop"),
			comments.Changed("web", []comments.Kin{{Name: "website", Why: "same directory apps/web"}, {Name: "www", Why: "same namespace web"}}),
		})},
		{"stale", comments.Stale([]string{comments.NotPlannedAt(web, head), comments.LiveChanged(api)})},
		{"interrupted", comments.Interrupted([]comments.Run{run(web, "dave", ""), run(api, "carol", "")})},
		// Locks.
		{"lock-notes", comments.LockNote(web, other, true) + "\n" + comments.LockNote(api, comments.Lock{Where: api, Number: 7, Holder: "carol"}, false)},
		{"no-lock", comments.NoLock("", nil)},
		{"no-lock-held", comments.NoLock(comments.Selection("shop", ""), []comments.Lock{other, {Where: api, Number: 9}})},
		{"unlocked", comments.Unlocked([]comments.Where{web, api}, nil)},
		{"unlocked-refused", comments.Unlocked([]comments.Where{web}, []string{comments.UnlockNeedsAdmin(comments.Lock{Where: api, Number: 9}, "@dave has write access; needs admin")})},
		{"unlock-refused", comments.Unlocked(nil, []string{"@dave has read access; needs write"})},
		{"lock-released", comments.LockReleased(other, "admin", 12)},
		// Closing and merging.
		{"closed-unmerged", comments.ClosedUnmerged([]comments.Where{web}, []comments.Run{run(web, "dave", "succeeded"), run(api, "carol", "failed")})},
		{"closed-released", comments.ClosedUnmerged([]comments.Where{web, api}, nil)},
		{"locks-released", comments.LocksReleased([]comments.Where{web, api})},
		{"resumed-note", comments.ResumedNote(sha, "before_merge")},
		{"rollout-bad-config", comments.RolloutBadConfig(".kubeplan.yaml: line 3: unknown field \"projcts\"")},
		{"rollout-locked", comments.RolloutLocked(web, other)},
		{"rollout-unplanned", comments.RolloutUnplanned(web, sha, "render apps/web: apps/web/deploy.yaml: yaml: line 3: did not find expected key")},
		{"rollout-denied", comments.RolloutDenied(web, sha, []string{"Deployment web/web: images must come from registry.example.com", "Service web/lb: no LoadBalancer services"})},
		{"rollout-destructive", comments.RolloutDestructive(web, sha, comments.DestructiveNotAllowed(web, destructive))},
		{"rollout-refused", comments.RolloutRefused(web, sha, []string{"@bob has write access to acme/platform; roll out needs maintain",
			comments.PolicyUnmet(head, "1 of 2 approvals", []string{"rule prod: 1 of 2 approvals"}), comments.MergedByApp("merge-bot[bot]", sha, false, ""),
			comments.MergedByApp("merge-bot[bot]", sha, true, "1 of 2 approvals")})},
		// The merge queue.
		{"merge-group-refused", comments.MergeGroupRefused(sha, []string{comments.GroupUnplanned(web, sha, "cluster prod: connection refused"),
			comments.GroupWouldFail(api, 1), comments.NotReviewed(web, 12, head), comments.GroupDiffers(api, head)})},
		// Giving up.
		{"gave-up-push", comments.GaveUp(comments.GiveUp{Kind: "pull_request", Action: "synchronize", HeadSHA: sha, Sender: "mallory", Reason: "it stopped kubeplan 3 times"})},
		{"gave-up-command", comments.GaveUp(comments.GiveUp{Kind: "comment", Action: "created", Comment: "  /apply -p `web`" + strings.Repeat(" -c prod", 12) + "\nplease", Sender: "bob", Reason: "it stopped kubeplan 3 times"})},
		{"gave-up-other", comments.GaveUp(comments.GiveUp{Kind: "review", Action: "submitted", Sender: "carol", Reason: "it stopped kubeplan 3 times"})},
		// The drift issue.
		{"drift-issue-help", comments.DriftIssueHelp},
		{"drift-applied", comments.DriftApplied(comments.DriftApply{Where: web, SHA: sha, Objects: []string{"ConfigMap web/settings: configured", "Deployment web/`web`: configured (Current)"},
			State: "succeeded", Summary: "2 changed", Extra: 1})},
		{"drift-apply-failed", comments.DriftApplied(comments.DriftApply{Where: web, SHA: sha, Objects: []string{"Deployment web/web: failed: Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas"},
			State: "failed", Summary: "1 failed"})},
		{"drift-nothing", comments.DriftNothingToApply(web, sha, 0) + "\n" + comments.DriftNothingToApply(api, sha, 2)},
		{"drift-apply-refused", comments.Refused("apply", []string{"@mallory has read access to acme/platform; /apply needs write",
			comments.LockedBy(web, other), comments.DriftCheckRunning(web), comments.DriftTargetGone(api, sha),
			comments.DriftOtherTarget(comments.Selection("api", ""), web)})},
		// The plan comment's fixed parts.
		{"plan-fixed", comments.CommandsLine + "\n" + comments.NoConfigNote + "\n" + comments.ConfigTarget("bad").Project},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if seen[c.name] {
				t.Fatalf("two cases named %s", c.name)
			}
			seen[c.name] = true
			if err := comments.CheckMarkdown(c.text); err != nil {
				t.Errorf("%v:\n%s", err, c.text)
			}
			golden.Assert(t, "texts/"+c.name+".md", c.text)
		})
	}
}

// An error quoted in a roll-out's refusal cannot close its code block early and break the
// comment (it used to: the error went into the fence as it was).
func TestRolloutErrorStaysInItsCodeBlock(t *testing.T) {
	text := comments.RolloutUnplanned(comments.Where{Project: "web", Cluster: "prod"}, "abc", "render apps/web: a template printed\n```\n<details>\nand more")
	if err := comments.CheckMarkdown(text); err != nil {
		t.Fatalf("%v:\n%s", err, text)
	}
}
