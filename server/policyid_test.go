package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/store"
)

func namespaceYAML(ns string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns)
}

// Issue 9, hole 3: rules scoped by project name bind to what the base branch calls a project,
// not to what the pull request's own .kubeplan.yaml calls it. The attack: a writer outside
// @acme/sre renames payments in the pull request and applies it without the approvals and the
// team payments needs; then the same with payments' directory and namespace moved into another
// project, and with payments moved out into a project the base branch has never seen.
func TestPolicyBindsToTheBaseBranchNamesOfProjects(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			pay, web, ledger := unique("pay-"+fc.name), unique("web-"+fc.name), unique("ledger-"+fc.name)
			emu := forgeemu.New(token, bot)
			t.Cleanup(emu.Close)
			repo := "acme/" + pay
			emu.AddTeamMember("acme/sre", "carol")
			kubeplanConfig := func(projects string) string { return "version: 1\nprojects:\n" + projects }
			paymentsAs := func(name, dir, ns string) string {
				return fmt.Sprintf("- {name: %s, dir: %s, namespace: %s}\n", name, dir, ns)
			}
			webAs := func(dir, ns string) string { return fmt.Sprintf("- {name: web, dir: %s, namespace: %s}\n", dir, ns) }
			base := emu.CreateRepo(repo, map[string]string{
				".kubeplan.yaml":              kubeplanConfig(paymentsAs("payments", "apps/payments", pay) + webAs("apps/web", web)),
				"apps/payments/ns.yaml":       namespaceYAML(pay),
				"apps/payments/settings.yaml": journeyConfigMap("v1"),
				"apps/web/ns.yaml":            namespaceYAML(web),
				"apps/web/settings.yaml":      journeyConfigMap("v1"),
			})
			for _, user := range []string{"alice", "carol", "dave"} {
				emu.SetPermission(repo, user, forge.PermWrite)
			}
			e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(c *config.Config) {
				payments := policy.Scope{Projects: []string{"payments"}}
				c.Policy.Roles = []policy.RoleRule{{Name: "payments-sre", Scope: payments, Teams: []string{"acme/sre"}, Restrict: policy.RoleApply}}
				c.Policy.Approvals = []policy.ApprovalRule{{Name: "payments", Scope: payments, MinApprovals: 2, Teams: []string{"acme/sre"}}}
			})
			j := &journey{t: t, fc: fc, e: e, emu: emu, repo: repo}

			// payments renamed pay2 in the pull request: still payments' rule, named in the refusal.
			renamed := emu.OpenPR(repo, "alice", "payments: v2", base, map[string]string{
				".kubeplan.yaml":              kubeplanConfig(paymentsAs("pay2", "apps/payments", pay) + webAs("apps/web", web)),
				"apps/payments/settings.yaml": journeyConfigMap("v2"),
			})
			j.pull(renamed, "opened", "alice")
			head := emu.PRState(repo, renamed).HeadSHA
			j.status(renamed, head, "kubeplan/plan", forge.Success, "")
			j.status(renamed, head, "kubeplan/policy", forge.Pending, "0 of 2 approvals")
			r := j.say(renamed, "dave", "/apply")
			for _, want := range []string{"refused", `@dave may not /apply pay2 on prod (payments on prod on the base branch): role rule "payments-sre"`,
				`approval rule "payments"`, "0 of 2 approvals", "on the base branch it is `payments` (same directory apps/payments"} {
				if !strings.Contains(r, want) {
					t.Fatalf("/apply of the renamed project with no approvals does not say %q:\n%s", want, r)
				}
			}
			if got := liveValue(t, prod, pay, "settings"); got != "" {
				t.Fatalf("the refused /apply applied: settings = %q", got)
			}
			// With the approvals payments needs, the writer is still not of the team payments
			// restricts applying to; an SRE applies it.
			j.approve(renamed, "dave")
			j.approve(renamed, "carol")
			j.status(renamed, head, "kubeplan/policy", forge.Success, "2 of 2")
			if r := j.say(renamed, "dave", "/apply"); !strings.Contains(r, `role rule "payments-sre"`) || strings.Contains(r, "approval rule") {
				t.Fatalf("/apply by the writer once approved: want only the role refusal:\n%s", r)
			}
			before := j.lastCommentID(renamed)
			j.post(renamed, "carol", "/apply")
			j.comment(renamed, before, "Applied prod / pay2")
			if got := liveValue(t, prod, pay, "settings"); got != "v2" {
				t.Fatalf("settings = %q after the approved /apply, want v2", got)
			}

			// web pointed at payments' directory and namespace: payments' rule follows them.
			moved := emu.OpenPR(repo, "alice", "web takes payments over", base, map[string]string{
				".kubeplan.yaml":              kubeplanConfig(webAs("apps/payments", pay)),
				"apps/payments/settings.yaml": journeyConfigMap("v3"),
			})
			j.pull(moved, "opened", "alice")
			j.status(moved, emu.PRState(repo, moved).HeadSHA, "kubeplan/policy", forge.Pending, "0 of 2 approvals")
			r = j.say(moved, "dave", "/apply")
			for _, want := range []string{`@dave may not /apply web on prod (payments on prod on the base branch): role rule "payments-sre"`,
				`approval rule "payments"`, "`payments` (same directory apps/payments, same namespace " + pay + ")"} {
				if !strings.Contains(r, want) {
					t.Fatalf("/apply of web moved onto payments does not say %q:\n%s", want, r)
				}
			}

			// payments renamed, moved and re-namespaced: a project the base branch has never
			// seen gets every rule of its cluster, payments' included.
			brandNew := emu.OpenPR(repo, "alice", "ledger", base, map[string]string{
				".kubeplan.yaml":              kubeplanConfig(paymentsAs("ledger", "apps/ledger", ledger) + webAs("apps/web", web)),
				"apps/payments/ns.yaml":       "",
				"apps/payments/settings.yaml": "",
				"apps/ledger/ns.yaml":         namespaceYAML(ledger),
				"apps/ledger/settings.yaml":   journeyConfigMap("v1"),
			})
			j.pull(brandNew, "opened", "alice")
			j.status(brandNew, emu.PRState(repo, brandNew).HeadSHA, "kubeplan/policy", forge.Pending, "0 of 2 approvals")
			r = j.say(brandNew, "dave", "/apply")
			for _, want := range []string{`@dave may not /apply ledger on prod (new in this pull request, so every rule on prod applies, whatever projects it names): role rule "payments-sre"`,
				`approval rule "payments"`, "project `ledger` is new in this pull request"} {
				if !strings.Contains(r, want) {
					t.Fatalf("/apply of a project new to the base branch does not say %q:\n%s", want, r)
				}
			}
			if got := liveValue(t, prod, ledger, "settings"); got != "" {
				t.Fatalf("the refused /apply applied: ledger settings = %q", got)
			}
		})
	}
}

// Issue 9, hole 6: a merge rolls out only what /apply would have applied. A writer outside
// the team prod is restricted to merges with no approvals: nothing is applied, the pull
// request and kubeplan/apply say why, and the history records it. A merge by an SRE with the
// approvals rolls out.
func TestRollOutChecksTheRoleAndApprovalsOfTheMerge(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			ns := unique("merge-" + fc.name)
			emu := forgeemu.New(token, bot)
			t.Cleanup(emu.Close)
			repo := "acme/" + ns
			emu.AddTeamMember("acme/sre", "carol")
			base := emu.CreateRepo(repo, map[string]string{
				".kubeplan.yaml":         fmt.Sprintf("version: 1\nprojects:\n- {name: web, dir: apps/web, namespace: %s}\n", ns),
				"apps/web/ns.yaml":       namespaceYAML(ns),
				"apps/web/settings.yaml": journeyConfigMap("v1"),
			})
			for _, user := range []string{"alice", "carol", "dave"} {
				emu.SetPermission(repo, user, forge.PermWrite)
			}
			state := filepath.Join(t.TempDir(), "state.db")
			e := start(t, emu, state, true, func(c *config.Config) {
				c.Policy = policy.Config{
					Roles:     []policy.RoleRule{{Name: "prod-sre-only", Scope: policy.Scope{Clusters: []string{"prod"}}, Teams: []string{"acme/sre"}, Restrict: policy.RoleApply}},
					Approvals: []policy.ApprovalRule{{Name: "two-with-sre", MinApprovals: 2, Teams: []string{"acme/sre"}}},
				}
			})
			j := &journey{t: t, fc: fc, e: e, emu: emu, repo: repo}

			unreviewed := emu.OpenPR(repo, "alice", "v2", base, map[string]string{"apps/web/settings.yaml": journeyConfigMap("v2")})
			j.pull(unreviewed, "opened", "alice")
			j.status(unreviewed, emu.PRState(repo, unreviewed).HeadSHA, "kubeplan/plan", forge.Success, "")
			merge := emu.MergePR(repo, unreviewed, "dave")
			before := j.lastCommentID(unreviewed)
			j.pull(unreviewed, "merged", "dave")
			refusal := j.comment(unreviewed, before, "kubeplan did not roll out `web` on `prod`")
			for _, want := range []string{`@dave may not roll out web on prod: role rule "prod-sre-only"`, "0 of 2 approvals", "nothing was applied"} {
				if !strings.Contains(refusal, want) {
					t.Fatalf("roll-out refusal does not say %q:\n%s", want, refusal)
				}
			}
			j.status(unreviewed, merge, "kubeplan/apply", forge.Failure, "web on prod (refused by policy)")
			if got := liveValue(t, prod, ns, "settings"); got != "" {
				t.Fatalf("a refused roll-out applied: settings = %q", got)
			}

			// Reviewed and merged by an SRE: rolled out.
			reviewed := emu.OpenPR(repo, "alice", "v3", emu.DefaultHead(repo), map[string]string{"apps/web/settings.yaml": journeyConfigMap("v3")})
			j.pull(reviewed, "opened", "alice")
			head := emu.PRState(repo, reviewed).HeadSHA
			j.status(reviewed, head, "kubeplan/plan", forge.Success, "")
			j.approve(reviewed, "dave")
			j.approve(reviewed, "carol")
			j.status(reviewed, head, "kubeplan/policy", forge.Success, "2 of 2")
			merge = emu.MergePR(repo, reviewed, "carol")
			before = j.lastCommentID(reviewed)
			j.pull(reviewed, "merged", "carol")
			j.comment(reviewed, before, "Rolled out on merge: prod / web")
			j.status(reviewed, merge, "kubeplan/apply", forge.Success, "Rolled out")
			if got := liveValue(t, prod, ns, "settings"); got != "v3" {
				t.Fatalf("settings = %q after the reviewed merge, want v3", got)
			}

			// The refusal is in the history, with who merged.
			e.stop()
			q, err := store.Open(context.Background(), state)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			history, err := q.State().Applies(context.Background(), fmt.Sprintf("%s:%s#%d", fc.name, repo, unreviewed))
			if err != nil || len(history) != 1 || history[0].State != store.ApplyRefused || history[0].Actor != "dave" || history[0].Trigger != store.OnMerge {
				t.Fatalf("history of the refused roll-out: %+v, %v", history, err)
			}
		})
	}
}

// GitHub's merge queue: the commit it would merge is planned again and compared with the plan
// each pull request was reviewed with. The first queued pull request's commit is what was
// reviewed; the second's also carries the first's change to the same project, so it is not,
// and its statuses and a comment say so. The queue's merge of the first rolls out on the
// strength of that check; a merge of the second anyway is not rolled out.
func TestMergeQueueCommitsArePlannedAndComparedWithTheReview(t *testing.T) {
	ns := unique("queue")
	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	repo := "acme/" + ns
	extra := func(v string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {value: %q}\n", v)
	}
	base := emu.CreateRepo(repo, map[string]string{
		".kubeplan.yaml":         fmt.Sprintf("version: 1\nprojects:\n- {name: web, dir: apps/web, namespace: %s}\n", ns),
		"apps/web/ns.yaml":       namespaceYAML(ns),
		"apps/web/settings.yaml": journeyConfigMap("v1"),
	})
	for _, user := range []string{"alice", "carol", "dave"} {
		emu.SetPermission(repo, user, forge.PermWrite)
	}
	e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(c *config.Config) {
		c.Policy.Approvals = []policy.ApprovalRule{{Name: "one", MinApprovals: 1}}
	})
	j := &journey{t: t, fc: forges[0], e: e, emu: emu, repo: repo}
	queue := func(n int, by string) forgeemu.MergeGroup {
		g := emu.Enqueue(repo, n, by)
		e.answer(forgeemu.SendGitHub(e.url+"/webhooks/github", secret, "merge_group", j.delivery(), emu.GitHubMergeGroupEvent(repo, n)))
		return g
	}

	first := emu.OpenPR(repo, "alice", "settings v2", base, map[string]string{"apps/web/settings.yaml": journeyConfigMap("v2")})
	second := emu.OpenPR(repo, "alice", "extra", base, map[string]string{"apps/web/extra.yaml": extra("x")})
	for _, n := range []int{first, second} {
		j.pull(n, "opened", "alice")
		j.status(n, emu.PRState(repo, n).HeadSHA, "kubeplan/plan", forge.Success, "")
		j.approve(n, "carol")
		j.status(n, emu.PRState(repo, n).HeadSHA, "kubeplan/policy", forge.Success, "1 of 1")
	}

	g1 := queue(first, "dave")
	j.status(first, g1.HeadSHA, "kubeplan/plan", forge.Success, fmt.Sprintf("Matches the plan reviewed on #%d", first))
	j.status(first, g1.HeadSHA, "kubeplan/policy", forge.Success, "1 of 1")
	j.status(first, g1.HeadSHA, "kubeplan/apply", forge.Success, "")

	before := j.lastCommentID(second)
	g2 := queue(second, "dave")
	j.status(second, g2.HeadSHA, "kubeplan/plan", forge.Failure, fmt.Sprintf("Not the plan reviewed on #%d", second))
	explained := j.comment(second, before, "the merge queue's commit `"+g2.HeadSHA[:7]+"` is not what was reviewed")
	if !strings.Contains(explained, "differs from the one reviewed") {
		t.Fatalf("merge queue comment:\n%s", explained)
	}

	// The queue merges the first as its own account: rolled out, on the strength of its check.
	merge := emu.MergeQueued(repo, first)
	before = j.lastCommentID(first)
	j.pull(first, "merged", forgeemu.MergeQueueBot)
	j.comment(first, before, "Rolled out on merge: prod / web")
	j.status(first, merge, "kubeplan/apply", forge.Success, "Rolled out")
	if got := liveValue(t, prod, ns, "settings"); got != "v2" {
		t.Fatalf("settings = %q after the queue merged #%d, want v2", got, first)
	}

	// Merged anyway (the queue does not require kubeplan's checks): not rolled out.
	merge = emu.MergeQueued(repo, second)
	before = j.lastCommentID(second)
	j.pull(second, "merged", forgeemu.MergeQueueBot)
	refusal := j.comment(second, before, "kubeplan did not roll out `web` on `prod`")
	if !strings.Contains(refusal, "@"+forgeemu.MergeQueueBot+" is an app's account") || !strings.Contains(refusal, "it did not") {
		t.Fatalf("roll-out of a merge group that failed its check:\n%s", refusal)
	}
	j.status(second, merge, "kubeplan/apply", forge.Failure, "refused by policy")
	if got := liveValue(t, prod, ns, "extra"); got != "" {
		t.Fatalf("the unchecked merge was rolled out: extra = %q", got)
	}
}
