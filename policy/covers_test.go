package policy

import "testing"

// A destructive change needs an approval rule that asks for an approval: a rule that asks for
// none, or one scoped elsewhere, does not cover it.
func TestCovers(t *testing.T) {
	p := mustCompile(t, `
approvals:
- {name: prod, clusters: ["prod-*"], minApprovals: 2}
- {name: dba, projects: [db], teams: [org/dba]}
- {name: nothing, clusters: [staging], codeOwners: true}
`, "")
	for _, tc := range []struct {
		project, cluster string
		want             bool
	}{
		{"web", "prod-eu", true},
		{"db", "staging", true},
		{"web", "staging", false},
		{"web", "dev", false},
	} {
		if got := p.Covers(tc.project, tc.cluster); got != tc.want {
			t.Errorf("Covers(%s, %s) = %v, want %v", tc.project, tc.cluster, got, tc.want)
		}
	}
	var none *Policy
	if none.Covers("web", "prod") {
		t.Error("no policy covers a destructive change")
	}
}
