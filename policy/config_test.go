package policy

import (
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name         string
		server, repo string
		want         string // exact error, or a prefix ending in "…"
	}{
		{name: "role without name", server: "roles: [{grant: apply, users: [a]}]",
			want: "server config: role rule #1 has no name"},
		{name: "duplicate role", server: "roles: [{name: x, grant: apply, users: [a]}, {name: x, restrict: apply}]",
			want: `server config: role rule "x" is defined twice`},
		{name: "role does nothing", server: "roles: [{name: x, users: [a]}]",
			want: `server config: role rule "x": set grant or restrict (read, apply or admin)`},
		{name: "grant to nobody", server: "roles: [{name: x, grant: apply}]",
			want: `server config: role rule "x": grant needs users or teams`},
		{name: "bad team", server: "roles: [{name: x, grant: apply, teams: [sre]}]",
			want: `server config: role rule "x": teams: "sre" is not org/team or group/subgroup`},
		{name: "bad glob", server: `roles: [{name: x, restrict: apply, clusters: ["prod-["]}]`,
			want: `server config: role rule "x": clusters: pattern "prod-[" is not valid`},
		{name: "negative approvals", server: "approvals: [{name: a, minApprovals: -1}]",
			want: `server config: approval rule "a": minApprovals must not be negative`},
		{name: "approval requiring nothing", server: "approvals: [{name: a}]",
			want: `server config: approval rule "a": requires nothing (set minApprovals, teams or codeOwners)`},
		{name: "duplicate approval", server: "approvals: [{name: a, minApprovals: 1}, {name: a, minApprovals: 2}]",
			want: `server config: approval rule "a" is defined twice`},
		{name: "undeclared CEL reference", server: "rules: [{name: no-privileged, expr: 'object.x == foo', message: m}]",
			want: `server config: policy rule "no-privileged": ERROR: <input>:1:13: undeclared reference to 'foo'`},
		{name: "CEL syntax error", server: "rules: [{name: r, expr: 'object.(', message: m}]",
			want: `server config: policy rule "r": ERROR: <input>:1:8: …`},
		{name: "non-bool expression", server: "rules: [{name: r, expr: object.metadata.name, message: m}]",
			want: `server config: policy rule "r": expr must return a bool, not dyn …`},
		{name: "string expression", server: "rules: [{name: r, expr: project + cluster, message: m}]",
			want: `server config: policy rule "r": expr must return a bool, not string …`},
		{name: "empty expression", server: "rules: [{name: r, message: m}]",
			want: `server config: policy rule "r": expr is empty`},
		{name: "rule without name", server: "rules: [{expr: 'true', message: m}]",
			want: `server config: policy rule #1 has no name`},
		{name: "duplicate rule", server: "rules: [{name: r, expr: 'true'}, {name: r, expr: 'false'}]",
			want: `server config: policy rule "r" is defined twice`},
		{name: "bad severity", server: "rules: [{name: r, expr: 'true', severity: fatal}]",
			want: `server config: policy rule "r": severity "fatal" (want deny or warn)`},
		{name: "bad action", server: "rules: [{name: r, expr: 'true', actions: [patch]}]",
			want: `server config: policy rule "r": actions: "patch" (want create, update, delete or unchanged)`},
		{name: "fail is not an action", server: "rules: [{name: r, expr: 'true', actions: [fail]}]",
			want: `server config: policy rule "r": actions: "fail" …`},
		{name: "bad kind", server: "rules: [{name: r, expr: 'true', kinds: [apps/]}]",
			want: `server config: policy rule "r": kinds: "apps/" is not a kind …`},
		{name: "bad group", server: "rules: [{name: r, expr: 'true', kinds: [Apps_V1/Deployment]}]",
			want: `server config: policy rule "r": kinds: "Apps_V1/Deployment": "Apps_V1" is not an API group …`},
		{name: "roles cannot be overridable", server: "allowedOverrides: [roles]",
			want: `server config: policy.allowedOverrides: "roles" cannot be overridden by repositories (want approvals or rules)`},
		{name: "repo sets roles", server: "allowedOverrides: [approvals, rules]", repo: "roles: [{name: me, grant: admin, users: [bob]}]",
			want: ".kubeplan.yaml: the server does not let repositories set policy.roles"},
		{name: "repo approvals not allowed", server: "allowedOverrides: [rules]", repo: "approvals: [{name: a, minApprovals: 3}]",
			want: ".kubeplan.yaml: the server does not let repositories set policy.approvals"},
		{name: "repo rules not allowed", server: "allowedOverrides: [approvals]", repo: "rules: [{name: r, expr: 'true'}]",
			want: ".kubeplan.yaml: the server does not let repositories set policy.rules"},
		{name: "repo rules without any overrides", server: "", repo: "rules: [{name: r, expr: 'true'}]",
			want: ".kubeplan.yaml: the server does not let repositories set policy.rules"},
		{name: "repo sets allowedOverrides", server: "allowedOverrides: [rules]", repo: "allowedOverrides: [approvals]",
			want: ".kubeplan.yaml: policy.allowedOverrides can only be set in the server config"},
		{name: "repo rule error names the file", server: "allowedOverrides: [rules]", repo: "rules: [{name: no-privileged, expr: 'foo', message: m}]",
			want: `.kubeplan.yaml: policy rule "no-privileged": ERROR: <input>:1:1: undeclared reference to 'foo'`},
		{name: "repo reuses a server rule name", server: "{allowedOverrides: [approvals], approvals: [{name: a, minApprovals: 1}]}", repo: "approvals: [{name: a, minApprovals: 0, teams: [org/x]}]",
			want: `.kubeplan.yaml: approval rule "a" is already defined in the server config`},
		{name: "repo reuses a server manifest rule name", server: "{allowedOverrides: [rules], rules: [{name: r, expr: 'true'}]}", repo: "rules: [{name: r, expr: 'false'}]",
			want: `.kubeplan.yaml: policy rule "r" is already defined in the server config`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var repo *Config
			if tc.repo != "" {
				c := mustConfig(t, tc.repo)
				repo = &c
			}
			_, err := Compile(mustConfig(t, tc.server), repo)
			if err == nil {
				t.Fatal("no error")
			}
			if prefix, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Fatalf("error:\n got %s\nwant %s", err, tc.want)
				}
			} else if err.Error() != tc.want {
				t.Fatalf("error:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestParseConfigStrict(t *testing.T) {
	for _, y := range []string{
		"approvals: [{name: a, minApprovals: 1, minApproval: 2}]",  // typo
		"roles: [{name: x, grant: superuser, users: [a]}]",         // unknown role
		"rules: [{name: r, expr: 'true', scope: {clusters: [x]}}]", // scope is inline
	} {
		if _, err := ParseConfig([]byte(y)); err == nil {
			t.Errorf("%s: accepted", y)
		}
	}
	c := mustConfig(t, `rules: [{name: r, expr: "true", projects: [web], clusters: ["prod-*"]}]`)
	if got := c.Rules[0].Scope; len(got.Projects) != 1 || got.Clusters[0] != "prod-*" {
		t.Errorf("inline scope not read: %+v", got)
	}
}

func TestCompileAcceptsRepositoryAdditions(t *testing.T) {
	p := mustCompile(t, `
allowedOverrides: [approvals, rules]
approvals: [{name: default, minApprovals: 1}]
rules: [{name: server-rule, expr: "true"}]
`, `
approvals: [{name: repo-two, minApprovals: 2}]
rules: [{name: repo-rule, expr: "action != 'delete'", message: no deletes}]
`)
	if !p.HasRules() || !p.HasApprovalRules() || p.HasRoleRules() {
		t.Errorf("Has*: rules %v approvals %v roles %v", p.HasRules(), p.HasApprovalRules(), p.HasRoleRules())
	}
	if got := strings.Join(p.RuleNames(), ","); got != "server-rule,repo-rule" {
		t.Errorf("RuleNames = %s", got)
	}
	var empty *Policy
	if empty.HasRules() || (&Policy{}).HasRules() {
		t.Error("empty policy has rules")
	}
}

func TestScopeString(t *testing.T) {
	for _, tc := range []struct {
		s    Scope
		want string
	}{
		{Scope{}, "everywhere"},
		{Scope{Clusters: []string{"prod-*"}}, "all projects on prod-*"},
		{Scope{Projects: []string{"web", "api"}}, "web, api on all clusters"},
		{Scope{Projects: []string{"web"}, Clusters: []string{"prod-eu"}}, "web on prod-eu"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.s, got, tc.want)
		}
	}
}

// The server compiles its policy once; every event extends it with its repository's rules.
// Two repositories extending the same server policy must never see each other's rules, and
// the server's own policy stays as compiled.
func TestExtendKeepsTheServerPolicyAndRepositoriesApart(t *testing.T) {
	server, err := Compile(mustConfig(t, `
allowedOverrides: [approvals, rules]
approvals: [{name: default, minApprovals: 1}]
rules: [{name: server-rule, expr: "true"}]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	shop := mustConfig(t, `rules: [{name: shop-rule, expr: "true"}]`)
	web := mustConfig(t, `rules: [{name: web-rule, expr: "true"}]`)
	a, err := server.Extend(&shop)
	if err != nil {
		t.Fatal(err)
	}
	b, err := server.Extend(&web)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    *Policy
		want string
	}{{"server", server, "server-rule"}, {"shop", a, "server-rule,shop-rule"}, {"web", b, "server-rule,web-rule"}} {
		if got := strings.Join(tc.p.RuleNames(), ","); got != tc.want {
			t.Errorf("%s: rules %s, want %s", tc.name, got, tc.want)
		}
	}
	if _, err := a.Extend(&web); err == nil {
		t.Error("a repository's policy was extended again")
	}
	if same, err := server.Extend(nil); err != nil || same != server {
		t.Errorf("no repository policy: %v, %v", same, err)
	}
	// A repository's bad rule fails its extension, naming the file, not the server policy.
	bad := mustConfig(t, `rules: [{name: r, expr: "foo"}]`)
	if _, err := server.Extend(&bad); err == nil || !strings.HasPrefix(err.Error(), ".kubeplan.yaml: policy rule \"r\"") {
		t.Errorf("bad repository rule: %v", err)
	}
	var none *Policy
	if p, err := none.Extend(&web); err == nil || p != nil {
		t.Errorf("a nil server policy let a repository add rules: %v", err)
	}
}
