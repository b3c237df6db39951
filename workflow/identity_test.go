package workflow

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/repoconfig"
)

// The base branch of these cases: payments (restricted by policy) and web, both on prod.
const baseYAML = `version: 1
projects:
- {name: payments, dir: apps/payments, namespace: payments, clusters: [prod]}
- {name: web, dir: apps/web, namespace: web, clusters: [prod, staging]}
`

// How a project of the pull request's configuration is seen by policy, for each way the pull
// request can change it.
func TestPolicySeesProjectsUnderTheirBaseBranchNames(t *testing.T) {
	base, err := repoconfig.Parse([]byte(baseYAML))
	if err != nil {
		t.Fatal(err)
	}
	payments := policy.Target{Project: "payments", Cluster: "prod"}
	for _, tc := range []struct {
		name    string
		head    string // the pull request's projects
		project string
		cluster string // default prod
		want    policy.Target
		note    string
	}{
		{name: "unchanged", project: "payments",
			head: "- {name: payments, dir: apps/payments, namespace: payments, clusters: [prod]}",
			want: payments},
		{name: "renamed", project: "pay2",
			head: "- {name: pay2, dir: apps/payments, namespace: payments, clusters: [prod]}",
			want: policy.Target{Project: "pay2", Cluster: "prod", Was: []policy.Target{payments}},
			note: "on the base branch it is `payments` (same directory apps/payments, same namespace payments)"},
		{name: "another project pointed at payments' directory and namespace", project: "web",
			head: "- {name: web, dir: apps/payments, namespace: payments, clusters: [prod]}",
			want: policy.Target{Project: "web", Cluster: "prod", Was: []policy.Target{payments, {Project: "web", Cluster: "staging"}}},
			note: "`payments` (same directory apps/payments, same namespace payments), `web` (same name)"},
		{name: "renamed and moved to another cluster: its old name on both clusters", project: "pay2", cluster: "staging",
			head: "- {name: pay2, dir: apps/payments, namespace: payments, clusters: [staging]}",
			want: policy.Target{Project: "pay2", Cluster: "staging", Was: []policy.Target{payments, {Project: "payments", Cluster: "staging"}}}},
		{name: "namespace moved into payments'", project: "web",
			head: "- {name: web, dir: apps/web, namespace: payments, clusters: [prod, staging]}",
			want: policy.Target{Project: "web", Cluster: "prod", Was: []policy.Target{payments, {Project: "web", Cluster: "staging"}}}},
		{name: "renamed, moved and re-namespaced: new", project: "ledger",
			head: "- {name: ledger, dir: apps/ledger, namespace: ledger, clusters: [prod]}",
			want: policy.Target{Project: "ledger", Cluster: "prod", New: true},
			note: "is new in this pull request"},
		{name: "default namespace and cluster count as set", project: "payments",
			head: "- {name: payments, dir: apps/payments, namespace: payments}",
			want: payments},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, err := repoconfig.Parse([]byte("version: 1\nprojects:\n" + tc.head + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.cluster == "" {
				tc.cluster = "prod"
			}
			k := relate(head, base, "prod")[tc.project]
			if got := k.target(tc.project, tc.cluster, "prod"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("target:\n got %+v\nwant %+v", got, tc.want)
			}
			note := k.note(tc.project)
			if (note == "") != (tc.want.Was == nil && !tc.want.New) || !strings.Contains(note, tc.note) {
				t.Errorf("note %q, want one with %q", note, tc.note)
			}
		})
	}
}

// Without a base to compare with (none fetched), policy sees the names as they are; a broken
// base configuration counts as empty, so every project is new and held to every rule.
func TestPolicyWithoutABaseConfiguration(t *testing.T) {
	head, err := repoconfig.Parse([]byte("version: 1\nprojects:\n- {name: web, dir: apps/web}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := relate(head, nil, "prod")["web"].target("web", "prod", "prod"); got.New || got.Was != nil {
		t.Errorf("no base: %+v", got)
	}
	if got := relate(head, &repoconfig.Config{}, "prod")["web"].target("web", "prod", "prod"); !got.New {
		t.Errorf("empty base: %+v, want new", got)
	}
}
