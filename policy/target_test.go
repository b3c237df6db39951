package policy

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/plan"
)

// A policy scoped by project name, as in kubeplan issue 9: payments needs the SRE team.
const paymentsPolicy = `
roles:
- name: payments-sre
  projects: [payments]
  teams: ["org/sre"]
  restrict: apply
- name: web-deployers
  projects: [web]
  users: [rita]
  grant: apply
approvals:
- name: payments
  projects: [payments]
  minApprovals: 2
  teams: ["org/sre"]
- name: prod
  clusters: ["prod-*"]
  minApprovals: 1
rules:
- name: payments-no-delete
  projects: [payments]
  actions: [delete]
  expr: "false"
  message: payments objects are not deleted by pull requests
`

var (
	// renamed is payments renamed to pay2 in the pull request.
	renamed = Target{Project: "pay2", Cluster: "staging", Was: []Target{{Project: "payments", Cluster: "staging"}}}
	// brandNew is a project the base branch has no trace of.
	brandNew = Target{Project: "ledger", Cluster: "staging", New: true}
	plain    = Target{Project: "pay2", Cluster: "staging"}
)

// A pull request cannot shed a project's approval rules by renaming it: the rules of its
// base-branch name apply, and a project new to the base branch gets every rule of its cluster.
func TestApprovalRulesFollowTheBaseBranchIdentity(t *testing.T) {
	p := mustCompile(t, paymentsPolicy, "")
	pr := PullRequest{Author: "bob", HeadSHA: head}
	for _, tc := range []struct {
		name      string
		target    Target
		satisfied bool
		detail    string
	}{
		{name: "under its new name alone no rule applies", target: plain, satisfied: true},
		{name: "renamed: its base-branch name's rule applies", target: renamed, detail: `approval rule "payments" (payments on all clusters): 0 of 2 approvals`},
		{name: "new: rules naming other projects apply", target: brandNew, detail: `approval rule "payments" (payments on all clusters): 0 of 2 approvals`},
		{name: "new: rules of other clusters do not", target: Target{Project: "ledger", Cluster: "prod-eu", New: true}, detail: `approval rule "prod"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := p.Approvals(context.Background(), newDir(), pr, CodeOwners{}, []Target{tc.target})
			if err != nil {
				t.Fatal(err)
			}
			if st.Satisfied != tc.satisfied {
				t.Errorf("satisfied = %v, want %v (%q)", st.Satisfied, tc.satisfied, st.Details)
			}
			if tc.detail != "" && !contains(st.Details, tc.detail) {
				t.Errorf("details %q lack %q", st.Details, tc.detail)
			}
		})
	}
	// The new project on staging is not held to the prod rule.
	st, _ := p.Approvals(context.Background(), newDir(), pr, CodeOwners{}, []Target{brandNew})
	if contains(st.Details, `approval rule "prod"`) {
		t.Errorf("a staging project got the prod rule: %q", st.Details)
	}
}

func contains(lines []string, part string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, part) })
}

// Role rules bind to every name a project has: restrictions of any name apply, and a grant
// must hold under all of them.
func TestRolesFollowTheBaseBranchIdentity(t *testing.T) {
	p := mustCompile(t, paymentsPolicy, "")
	for _, tc := range []struct {
		name   string
		user   string
		perm   forge.Permission
		target Target
		rule   string // "" allowed, "-" refused for the permission
		msg    string
	}{
		{name: "renamed payments keeps its restriction", user: "bob", perm: forge.PermWrite, target: renamed, rule: "payments-sre",
			msg: `@bob may not /apply pay2 on staging (payments on staging on the base branch): role rule "payments-sre" restricts apply there to @org/sre`},
		{name: "the restriction's team still applies", user: "alice", perm: forge.PermWrite, target: renamed},
		{name: "new project: restrictions of any project apply", user: "bob", perm: forge.PermWrite, target: brandNew, rule: "payments-sre",
			msg: `@bob may not /apply ledger on staging (new in this pull request, so every rule on staging applies, whatever projects it names): role rule "payments-sre" restricts apply there to @org/sre`},
		{name: "a grant must hold under every name", user: "rita", perm: forge.PermRead,
			target: Target{Project: "web", Cluster: "staging", Was: []Target{{Project: "api", Cluster: "staging"}}}, rule: "-"},
		{name: "a project-scoped grant does not reach a new project", user: "rita", perm: forge.PermRead,
			target: Target{Project: "web", Cluster: "staging", New: true}, rule: "-"},
		{name: "the grant under its only name", user: "rita", perm: forge.PermRead, target: Target{Project: "web", Cluster: "staging"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.AuthorizeRequest(context.Background(), newDir(), Request{User: tc.user, Permission: tc.perm,
				Project: tc.target.Project, Cluster: tc.target.Cluster, Was: tc.target.Was, New: tc.target.New, Need: RoleApply})
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			ref, ok := IsRefusal(err)
			if !ok {
				t.Fatalf("want a refusal, got %v", err)
			}
			if want := map[bool]string{true: "", false: tc.rule}[tc.rule == "-"]; ref.Rule != want {
				t.Errorf("rule = %q, want %q", ref.Rule, want)
			}
			if tc.msg != "" && ref.Message != tc.msg {
				t.Errorf("message:\n got %s\nwant %s", ref.Message, tc.msg)
			}
		})
	}
}

// Manifest rules too: a deny rule scoped to payments holds for the renamed and the new project.
func TestManifestRulesFollowTheBaseBranchIdentity(t *testing.T) {
	p := mustCompile(t, paymentsPolicy, "")
	del := change("v1", "ConfigMap", plan.Delete)
	for _, tc := range []struct {
		target Target
		denied bool
	}{{plain, false}, {renamed, true}, {brandNew, true}} {
		got := p.Check(context.Background(), nil, tc.target, del, nil, map[string]any{}, PRInfo{})
		if (len(got) > 0) != tc.denied {
			t.Errorf("%+v: findings %+v, want denied %v", tc.target, got, tc.denied)
		}
	}
}
