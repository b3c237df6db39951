package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/forge"
)

const approvalPolicy = `
approvals:
- name: default
  minApprovals: 1
- name: prod
  clusters: ["prod-*"]
  minApprovals: 2
  teams: ["org/sre"]
`

const head = "c0ffee"

func approve(who, sha string) forge.Review {
	return forge.Review{Author: who, Approved: true, CommitSHA: sha}
}

func TestApprovals(t *testing.T) {
	staging := []Target{{Project: "web", Cluster: "staging"}}
	prod := []Target{{Project: "web", Cluster: "prod-eu"}}
	for _, tc := range []struct {
		name      string
		policy    string
		reviews   []forge.Review
		targets   []Target
		satisfied bool
		summary   string
		details   []string // each must appear in the matching Details line
		// counted, when set, are the approvals that counted ("reviewer@sha"); none is []string{}.
		counted []string
	}{
		{name: "no approvals", reviews: nil, targets: staging, summary: "0 of 1 approvals",
			details: []string{`approval rule "default" (everywhere): 0 of 1 approvals`}},
		{name: "one approval on head", reviews: []forge.Review{approve("alice", head)}, targets: staging, satisfied: true, counted: []string{"alice@c0ffee"},
			summary: "1 of 1 approvals", details: []string{`approval rule "default" (everywhere): satisfied, 1 of 1 approvals`}},
		{name: "author's own approval ignored", reviews: []forge.Review{approve("Bob", head)}, targets: staging, counted: []string{},
			summary: "0 of 1 approvals", details: []string{"@bob's own approval does not count"}},
		{name: "stale approval ignored", reviews: []forge.Review{approve("carol", "0ld")}, targets: staging, counted: []string{},
			summary: "0 of 1 approvals", details: []string{"approval by @carol is on an older commit"}},
		{name: "unknown commit is stale", reviews: []forge.Review{approve("carol", "")}, targets: staging,
			summary: "0 of 1 approvals", details: []string{"approval by @carol is on an unknown commit"}},
		{name: "stale approval counted when configured", policy: "approvals: [{name: lax, minApprovals: 1, countStaleApprovals: true}]",
			reviews: []forge.Review{approve("carol", "0ld")}, targets: staging, satisfied: true, summary: "1 of 1 approvals", counted: []string{"carol@0ld"}},
		{name: "unknown commit counted when configured", policy: "approvals: [{name: lax, minApprovals: 1, countStaleApprovals: true}]",
			reviews: []forge.Review{approve("carol", "")}, targets: staging, satisfied: true, summary: "1 of 1 approvals"},
		{name: "dismissed cancels approval", targets: staging, summary: "0 of 1 approvals",
			reviews: []forge.Review{approve("alice", head), {Author: "alice", Dismissed: true, CommitSHA: head}}},
		{name: "changes requested cancels approval", targets: staging, summary: "0 of 1 approvals",
			reviews: []forge.Review{approve("alice", head), {Author: "alice", ChangesRequested: true, CommitSHA: head}}},
		{name: "approval after changes requested counts", targets: staging, satisfied: true, summary: "1 of 1 approvals",
			reviews: []forge.Review{{Author: "alice", ChangesRequested: true, CommitSHA: head}, approve("alice", head)}},
		{name: "later comment keeps approval", targets: staging, satisfied: true, summary: "1 of 1 approvals",
			reviews: []forge.Review{approve("alice", head), {Author: "alice", CommitSHA: head}}},
		{name: "same reviewer counts once", targets: staging, policy: "approvals: [{name: two, minApprovals: 2}]", summary: "1 of 2 approvals",
			reviews: []forge.Review{approve("alice", "0ld"), approve("Alice", head)}},
		{name: "team required on prod", reviews: []forge.Review{approve("carol", head), approve("dan", head)}, targets: prod,
			summary: "2 of 2 approvals, needs @org/sre",
			details: []string{`approval rule "default" (everywhere): satisfied, 1 of 1 approvals`,
				`approval rule "prod" (all projects on prod-*): 2 of 2 approvals; needs an approval from @org/sre`}},
		{name: "count and team missing", reviews: []forge.Review{approve("carol", head)}, targets: prod,
			summary: "1 of 2 approvals, needs @org/sre"},
		{name: "team member approval satisfies prod", reviews: []forge.Review{approve("carol", head), approve("sam", head)}, targets: prod,
			satisfied: true, summary: "2 of 2 approvals", counted: []string{"carol@c0ffee", "sam@c0ffee"}},
		{name: "stale team approval does not count", reviews: []forge.Review{approve("carol", head), approve("sam", "0ld")}, targets: prod, counted: []string{"carol@c0ffee"},
			summary: "1 of 2 approvals, needs @org/sre",
			details: []string{"", "approval by @sam is on an older commit"}},
		{name: "cluster-scoped rule applies when any target is on it", reviews: []forge.Review{approve("carol", head)},
			targets: []Target{{Project: "web", Cluster: "staging"}, {Project: "web", Cluster: "prod-us"}}, summary: "1 of 2 approvals, needs @org/sre"},
		{name: "rule matching several targets is evaluated once", reviews: []forge.Review{approve("carol", head)},
			targets: []Target{{Project: "web", Cluster: "staging"}, {Project: "api", Cluster: "staging"}, {Project: "db", Cluster: "staging"}}, satisfied: true, summary: "1 of 1 approvals",
			details: []string{`approval rule "default"`}},
		{name: "project-scoped rule skipped for other projects", policy: approvalPolicy + "  projects: [web]\n", targets: []Target{{Project: "api", Cluster: "prod-eu"}},
			reviews: nil, summary: "0 of 1 approvals", details: []string{`approval rule "default"`}},
		{name: "no targets", targets: nil, satisfied: true, summary: "No approval rule applies", counted: []string{}},
		{name: "scoped-out targets", policy: "approvals: [{name: p, clusters: [prod], minApprovals: 1}]", targets: staging,
			satisfied: true, summary: "No approval rule applies"},
		{name: "teams only", policy: "approvals: [{name: sre, teams: [org/sre, org/dba]}]", targets: staging,
			reviews: []forge.Review{approve("sam", head)}, summary: "1 approval, needs @org/dba"},
		{name: "teams only satisfied", policy: "approvals: [{name: sre, teams: [org/sre]}]", targets: staging,
			reviews: []forge.Review{approve("sam", head)}, satisfied: true, summary: "Approval rules satisfied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := tc.policy
			if pol == "" {
				pol = approvalPolicy
			}
			p := mustCompile(t, pol, "")
			pr := PullRequest{Author: "bob", HeadSHA: head, Reviews: tc.reviews}
			st, err := p.Approvals(context.Background(), newDir(), pr, CodeOwners{}, tc.targets)
			if err != nil {
				t.Fatal(err)
			}
			if st.Satisfied != tc.satisfied || st.Summary != tc.summary {
				t.Errorf("got %v %q, want %v %q\n%s", st.Satisfied, st.Summary, tc.satisfied, tc.summary, strings.Join(st.Details, "\n"))
			}
			if tc.counted != nil {
				got := []string{}
				for _, a := range st.Counted {
					got = append(got, a.Reviewer+"@"+a.SHA)
				}
				if strings.Join(got, ",") != strings.Join(tc.counted, ",") {
					t.Errorf("counted approvals: got %q, want %q", got, tc.counted)
				}
			}
			if len(tc.details) > 0 && len(st.Details) != len(tc.details) {
				t.Errorf("details: got %d lines, want %d:\n%s", len(st.Details), len(tc.details), strings.Join(st.Details, "\n"))
			}
			for i, want := range tc.details {
				if i < len(st.Details) && !strings.Contains(st.Details[i], want) {
					t.Errorf("details[%d] = %q, want it to contain %q", i, st.Details[i], want)
				}
			}
		})
	}
}

func TestApprovalsRepositoryRules(t *testing.T) {
	server := "{allowedOverrides: [approvals], approvals: [{name: default, minApprovals: 1}]}"
	pr := PullRequest{Author: "bob", HeadSHA: head, Reviews: []forge.Review{approve("alice", head)}}
	targets := []Target{{Project: "web", Cluster: "staging"}}

	before, err := mustCompile(t, server, "").Approvals(context.Background(), newDir(), pr, CodeOwners{}, targets)
	if err != nil || !before.Satisfied {
		t.Fatalf("server policy alone: %+v, %v", before, err)
	}
	// A repository adding a stricter rule raises the requirement…
	p := mustCompile(t, server, "approvals: [{name: repo-two, minApprovals: 2}]")
	after, err := p.Approvals(context.Background(), newDir(), pr, CodeOwners{}, targets)
	if err != nil {
		t.Fatal(err)
	}
	if after.Satisfied || after.Summary != "1 of 2 approvals" {
		t.Errorf("with repo rule: %v %q", after.Satisfied, after.Summary)
	}
	if len(after.Details) != 2 || !strings.Contains(after.Details[1], `approval rule "repo-two" (everywhere, from .kubeplan.yaml): 1 of 2 approvals`) {
		t.Errorf("details: %q", after.Details)
	}
	// …and a "laxer" repository rule cannot lower it: every rule must hold.
	p = mustCompile(t, "{allowedOverrides: [approvals], approvals: [{name: default, minApprovals: 2}]}",
		"approvals: [{name: lax, minApprovals: 1, countStaleApprovals: true}]")
	st, err := p.Approvals(context.Background(), newDir(), pr, CodeOwners{}, targets)
	if err != nil || st.Satisfied || st.Summary != "1 of 2 approvals" {
		t.Errorf("lax repo rule: %+v, %v", st, err)
	}
}

func TestApprovalsDirectoryError(t *testing.T) {
	dir := newDir()
	dir.fail = map[string]bool{"org/sre": true}
	pr := PullRequest{Author: "bob", HeadSHA: head, Reviews: []forge.Review{approve("carol", head)}}
	_, err := mustCompile(t, approvalPolicy, "").Approvals(context.Background(), dir, pr, CodeOwners{}, []Target{{Project: "web", Cluster: "prod-eu"}})
	if !errors.Is(err, errBoom) {
		t.Fatalf("got %v, want the directory error", err)
	}
}

func TestApprovalsMembershipCached(t *testing.T) {
	dir := newDir()
	p := mustCompile(t, `approvals: [{name: a, teams: [org/sre]}, {name: b, clusters: [prod-*], teams: [org/sre]}]`, "")
	pr := PullRequest{Author: "bob", HeadSHA: head, Reviews: []forge.Review{approve("carol", head)}}
	if _, err := p.Approvals(context.Background(), dir, pr, CodeOwners{}, []Target{{Project: "web", Cluster: "prod-eu"}}); err != nil {
		t.Fatal(err)
	}
	if dir.calls != 1 {
		t.Errorf("directory asked %d times, want 1", dir.calls)
	}
}

func TestSummaryLength(t *testing.T) {
	var teams []string
	for _, s := range []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo"} {
		teams = append(teams, "org/team-"+s)
	}
	p := mustCompile(t, "approvals: [{name: many, minApprovals: 3, teams: ["+strings.Join(teams, ", ")+"]}]", "")
	st, err := p.Approvals(context.Background(), newDir(), PullRequest{HeadSHA: head}, CodeOwners{}, []Target{{Project: "a", Cluster: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(st.Summary)); n > forge.MaxStatusDescription || !strings.HasSuffix(st.Summary, "…") {
		t.Errorf("summary (%d chars): %q", n, st.Summary)
	}
}
