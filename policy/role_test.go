package policy

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kubeplan/kubeplan/forge"
	ghforge "github.com/kubeplan/kubeplan/forge/github"
	glforge "github.com/kubeplan/kubeplan/forge/gitlab"
)

func TestRoleFromPermission(t *testing.T) {
	for _, tc := range []struct {
		perm forge.Permission
		want Role
	}{
		{forge.PermNone, RoleNone},
		{forge.PermRead, RoleRead},
		{forge.PermTriage, RoleRead},
		{forge.PermWrite, RoleApply},
		{forge.PermMaintain, RoleAdmin},
		{forge.PermAdmin, RoleAdmin},
		{"", RoleNone},
		{"owner", RoleNone},
	} {
		if got := RoleFromPermission(tc.perm); got != tc.want {
			t.Errorf("RoleFromPermission(%q) = %v, want %v", tc.perm, got, tc.want)
		}
	}
}

func TestRoleMarshal(t *testing.T) {
	for r, name := range map[Role]string{RoleNone: "none", RoleRead: "read", RoleApply: "apply", RoleAdmin: "admin"} {
		if r.String() != name {
			t.Errorf("String(%d) = %q, want %q", int(r), r.String(), name)
		}
		b, err := json.Marshal(r)
		if err != nil || string(b) != `"`+name+`"` {
			t.Errorf("json.Marshal(%v) = %s, %v", r, b, err)
		}
		var back Role
		if err := yaml.Unmarshal([]byte(name), &back); err != nil || back != r {
			t.Errorf("yaml.Unmarshal(%q) = %v, %v", name, back, err)
		}
	}
	var r Role
	if err := json.Unmarshal([]byte(`"superuser"`), &r); err == nil {
		t.Error("unknown role accepted")
	}
	if err := json.Unmarshal([]byte(`2`), &r); err == nil {
		t.Error("numeric role accepted")
	}
}

const rolePolicy = `
roles:
- name: staging-deployers
  clusters: ["staging"]
  users: [rita]
  teams: ["org/deployers"]
  grant: apply
- name: prod-sre-only
  clusters: ["prod-*"]
  users: ["@alice"]
  teams: ["@org/sre"]
  restrict: apply
`

func TestAuthorize(t *testing.T) {
	p := mustCompile(t, rolePolicy, "")
	for _, tc := range []struct {
		name             string
		user             string
		perm             forge.Permission
		project, cluster string
		need             Role
		rule             string // refused by this rule; "-" for a permission refusal; "" allowed
		msg              string
	}{
		{name: "write applies outside restrictions", user: "bob", perm: forge.PermWrite, project: "web", cluster: "staging", need: RoleApply},
		{name: "read may plan", user: "bob", perm: forge.PermRead, project: "web", cluster: "staging", need: RoleRead},
		{name: "triage may plan", user: "bob", perm: forge.PermTriage, project: "web", cluster: "prod-eu", need: RoleRead},
		{name: "none may not plan", user: "bob", perm: forge.PermNone, project: "web", cluster: "staging", need: RoleRead, rule: "-",
			msg: "@bob may not /plan: their permission on the repository is none, /plan needs read (the read role)"},
		{name: "read may not apply", user: "bob", perm: forge.PermRead, project: "web", cluster: "staging", need: RoleApply, rule: "-",
			msg: "@bob may not /apply: their permission on the repository is read, /apply needs write (the apply role)"},
		{name: "grant widens a listed user on staging", user: "rita", perm: forge.PermRead, project: "web", cluster: "staging", need: RoleApply},
		{name: "grant widens a team member on staging", user: "dan", perm: forge.PermRead, project: "web", cluster: "staging", need: RoleApply},
		{name: "grant is scoped: not on prod", user: "rita", perm: forge.PermRead, project: "web", cluster: "prod-eu", need: RoleApply, rule: "-"},
		{name: "grant does not apply to an unknown cluster", user: "rita", perm: forge.PermRead, project: "web", need: RoleApply, rule: "-"},
		{name: "restrict narrows write on prod", user: "bob", perm: forge.PermWrite, project: "web", cluster: "prod-eu", need: RoleApply, rule: "prod-sre-only",
			msg: `@bob may not /apply web on prod-eu: role rule "prod-sre-only" restricts apply there to @alice, @org/sre`},
		{name: "restrict narrows admins too", user: "root", perm: forge.PermAdmin, project: "web", cluster: "prod-us", need: RoleApply, rule: "prod-sre-only"},
		{name: "restrict applies to an unknown cluster", user: "bob", perm: forge.PermWrite, project: "web", need: RoleApply, rule: "prod-sre-only",
			msg: `@bob may not /apply web: role rule "prod-sre-only" restricts apply there to @alice, @org/sre`},
		{name: "restricted user may still plan", user: "bob", perm: forge.PermWrite, project: "web", cluster: "prod-eu", need: RoleRead},
		{name: "listed user passes restriction", user: "Alice", perm: forge.PermWrite, project: "web", cluster: "prod-eu", need: RoleApply},
		{name: "listed team member passes restriction", user: "sam", perm: forge.PermWrite, project: "web", cluster: "prod-eu", need: RoleApply},
		{name: "listed admin passes restriction", user: "sam", perm: forge.PermAdmin, project: "web", cluster: "prod-eu", need: RoleAdmin},
		{name: "admin passes outside restrictions", user: "root", perm: forge.PermAdmin, project: "web", cluster: "staging", need: RoleAdmin},
		{name: "maintain is admin", user: "root", perm: forge.PermMaintain, project: "web", cluster: "staging", need: RoleAdmin},
		{name: "write is not admin", user: "bob", perm: forge.PermWrite, project: "web", cluster: "staging", need: RoleAdmin, rule: "-",
			msg: "@bob may not do this: their permission on the repository is write, do this needs maintain (the admin role)"},
		{name: "restricted member lacks permission", user: "sam", perm: forge.PermRead, project: "web", cluster: "prod-eu", need: RoleApply, rule: "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Authorize(context.Background(), newDir(), tc.user, tc.perm, tc.project, tc.cluster, tc.need)
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
			wantRule := tc.rule
			if wantRule == "-" {
				wantRule = ""
			}
			if ref.Rule != wantRule {
				t.Errorf("rule = %q, want %q", ref.Rule, wantRule)
			}
			if tc.msg != "" && ref.Message != tc.msg {
				t.Errorf("message:\n got %s\nwant %s", ref.Message, tc.msg)
			}
		})
	}
}

func TestAuthorizeRequestNamesRepo(t *testing.T) {
	err := mustCompile(t, rolePolicy, "").AuthorizeRequest(context.Background(), newDir(), Request{
		User: "bob", Permission: forge.PermRead, Repo: "acme/shop", Project: "web", Cluster: "staging", Need: RoleApply,
	})
	want := "@bob may not /apply: their permission on acme/shop is read, /apply needs write (the apply role)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// A refusal words permissions as the user's forge does: a GitLab Reporter is not told about
// "triage", GitHub's word for the same rung.
func TestRefusalsUseTheForgesWords(t *testing.T) {
	gitlab, err := glforge.New(glforge.Config{Token: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	github, err := ghforge.New(ghforge.Config{Token: "unused"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, rolePolicy, "")
	for _, tc := range []struct {
		name  string
		words func(forge.Permission) string
		perm  forge.Permission
		need  Role
		want  string
	}{
		{"GitLab Reporter applies", gitlab.PermissionName, forge.PermTriage, RoleApply,
			"@bob may not /apply: their permission on acme/shop is Reporter, /apply needs Developer (the apply role)"},
		{"GitLab non-member plans", gitlab.PermissionName, forge.PermNone, RoleRead,
			"@bob may not /plan: their permission on acme/shop is no access, /plan needs Guest (the read role)"},
		{"GitLab Developer unlocks another's lock", gitlab.PermissionName, forge.PermWrite, RoleAdmin,
			"@bob may not /unlock: their permission on acme/shop is Developer, /unlock needs Maintainer (the admin role)"},
		{"GitHub triage applies", github.PermissionName, forge.PermTriage, RoleApply,
			"@bob may not /apply: their permission on acme/shop is triage, /apply needs write (the apply role)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := map[Role]string{RoleRead: "/plan", RoleApply: "/apply", RoleAdmin: "/unlock"}[tc.need]
			err := p.AuthorizeRequest(context.Background(), newDir(), Request{User: "bob", Permission: tc.perm, Repo: "acme/shop",
				Project: "web", Cluster: "staging", Need: tc.need, Command: cmd, PermissionName: tc.words})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestAuthorizeDirectoryErrors(t *testing.T) {
	p := mustCompile(t, rolePolicy, "")
	dir := newDir()
	dir.fail = map[string]bool{"org/sre": true, "org/deployers": true}
	for _, tc := range []struct{ user, cluster string }{
		{"bob", "prod-eu"}, // restriction: is bob in org/sre?
		{"bob", "staging"}, // grant: is bob in org/deployers? (read user needs it for apply)
	} {
		err := p.Authorize(context.Background(), dir, tc.user, forge.PermRead, "web", tc.cluster, RoleApply)
		if tc.cluster == "prod-eu" {
			err = p.Authorize(context.Background(), dir, tc.user, forge.PermWrite, "web", tc.cluster, RoleApply)
		}
		if !errors.Is(err, errBoom) {
			t.Errorf("%s on %s: got %v, want the directory error", tc.user, tc.cluster, err)
		}
		if _, ok := IsRefusal(err); ok {
			t.Errorf("%s on %s: directory failure reported as a refusal", tc.user, tc.cluster)
		}
	}
	// No directory at all is an error too, not a silent pass or refusal.
	if err := p.Authorize(context.Background(), nil, "bob", forge.PermWrite, "web", "prod-eu", RoleApply); err == nil {
		t.Error("nil directory: no error")
	} else if _, ok := IsRefusal(err); ok {
		t.Error("nil directory reported as a refusal")
	}
}

func TestAuthorizeWithoutPolicy(t *testing.T) {
	var p *Policy
	if err := p.Authorize(context.Background(), nil, "bob", forge.PermWrite, "web", "prod", RoleApply); err != nil {
		t.Errorf("nil policy: %v", err)
	}
	if _, ok := IsRefusal(p.Authorize(context.Background(), nil, "bob", forge.PermRead, "web", "prod", RoleApply)); !ok {
		t.Error("nil policy: read user may apply")
	}
}
