package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kubeplan/kubeplan/forge"
)

// Role is what someone may do with kubeplan: read (plan), apply, admin.
type Role int

const (
	RoleNone Role = iota
	RoleRead
	RoleApply
	RoleAdmin
)

var roleNames = []string{"none", "read", "apply", "admin"}

func (r Role) valid() bool { return r >= RoleNone && r <= RoleAdmin }

// String is "none", "read", "apply" or "admin".
func (r Role) String() string {
	if !r.valid() {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads "none", "read", "apply" or "admin".
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if strings.EqualFold(s, n) {
			return Role(i), nil
		}
	}
	return RoleNone, fmt.Errorf("unknown role %q (want none, read, apply or admin)", s)
}

// MarshalText makes roles JSON and YAML strings.
func (r Role) MarshalText() ([]byte, error) {
	if !r.valid() {
		return nil, fmt.Errorf("invalid role %d", int(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads a role name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// RoleFromPermission maps a forge permission to the role it gives without role rules:
// none → none; read, triage → read; write → apply; maintain, admin → admin.
func RoleFromPermission(p forge.Permission) Role {
	switch p {
	case forge.PermRead, forge.PermTriage:
		return RoleRead
	case forge.PermWrite:
		return RoleApply
	case forge.PermMaintain, forge.PermAdmin:
		return RoleAdmin
	default:
		return RoleNone
	}
}

// permissionFor is the least forge permission that gives a role by itself.
func permissionFor(r Role) forge.Permission {
	switch r {
	case RoleRead:
		return forge.PermRead
	case RoleApply:
		return forge.PermWrite
	case RoleAdmin:
		return forge.PermMaintain
	default:
		return forge.PermNone
	}
}

// Directory answers team and group membership.
type Directory interface {
	IsMember(ctx context.Context, team, user string) (bool, error)
}

// Refusal is a request the policy turns down; Message is what the pull request comment says.
type Refusal struct {
	// Rule is the role rule that refused, empty when the forge permission is too low.
	Rule    string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// IsRefusal reports whether err is (or wraps) a *Refusal, and returns it.
func IsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

// Request is a full authorization request; Authorize is the short form.
type Request struct {
	User       string
	Permission forge.Permission
	// Repo names the repository in refusals ("acme/shop"); optional.
	Repo string
	// Project and Cluster are the target. Empty means unknown: restrictions apply, grants don't.
	Project, Cluster string
	// Was and New say what the base branch knows of the project (see Target): the role is
	// the lowest the user has under any of its names.
	Was  []Target
	New  bool
	Need Role
	// Command is what the refusal says the user may not do ("/apply"); empty derives it from
	// Need: /plan for read, /apply for apply.
	Command string
	// PermissionName words a permission as the user's forge does in refusals (GitLab:
	// "Reporter"); nil uses kubeplan's scale, which is GitHub's words ("triage").
	PermissionName func(forge.Permission) string
}

// Authorize checks that user, with permission perm on the repository, has role need for a
// project on a cluster. It returns nil, a *Refusal, or the Directory's error.
func (p *Policy) Authorize(ctx context.Context, dir Directory, user string, perm forge.Permission, project, cluster string, need Role) error {
	return p.AuthorizeRequest(ctx, dir, Request{User: user, Permission: perm, Project: project, Cluster: cluster, Need: need})
}

// Role computes the user's role on a target: their forge permission, widened by grants in
// scope, then capped by restrictions in scope that do not list them. The second result is the
// restriction that capped them, if any.
func (p *Policy) Role(ctx context.Context, dir Directory, user string, perm forge.Permission, project, cluster string) (Role, *RoleRule, error) {
	return p.role(ctx, newMembership(dir, user), perm, project, cluster)
}

// roleOn is the lowest role the user has on a target under any of its names (see Target),
// with the restriction that capped it and the name it capped under.
func (p *Policy) roleOn(ctx context.Context, m *membership, perm forge.Permission, t Target) (Role, *RoleRule, identity, error) {
	var (
		lowest Role = -1
		capped *RoleRule
		under  identity
	)
	for _, id := range t.identities() {
		project := id.project
		if id.unknown {
			project = ""
		}
		role, c, err := p.role(ctx, m, perm, project, id.cluster)
		if err != nil {
			return RoleNone, nil, identity{}, err
		}
		if lowest < 0 || role < lowest {
			lowest, capped, under = role, c, id
		}
	}
	return lowest, capped, under, nil
}

func (p *Policy) role(ctx context.Context, m *membership, perm forge.Permission, project, cluster string) (Role, *RoleRule, error) {
	role := RoleFromPermission(perm)
	if p == nil {
		return role, nil, nil
	}
	for i := range p.roles {
		r := &p.roles[i]
		if r.Grant <= role || !r.Scope.Matches(project, cluster) {
			continue
		}
		ok, err := m.listed(ctx, r.Users, r.Teams)
		if err != nil {
			return RoleNone, nil, err
		}
		if ok {
			role = r.Grant
		}
	}
	var capped *RoleRule
	for i := range p.roles {
		r := &p.roles[i]
		if r.Restrict == RoleNone || role < r.Restrict || !r.Scope.matchesMaybe(project, cluster) {
			continue
		}
		ok, err := m.listed(ctx, r.Users, r.Teams)
		if err != nil {
			return RoleNone, nil, err
		}
		if !ok {
			role = r.Restrict - 1
			capped = r
		}
	}
	return role, capped, nil
}

// AuthorizeRequest is Authorize with the repository and command named in refusals.
func (p *Policy) AuthorizeRequest(ctx context.Context, dir Directory, req Request) error {
	role, capped, under, err := p.roleOn(ctx, newMembership(dir, req.User), req.Permission,
		Target{Project: req.Project, Cluster: req.Cluster, Was: req.Was, New: req.New})
	if err != nil {
		return err
	}
	if role >= req.Need {
		return nil
	}
	cmd := req.Command
	if cmd == "" {
		switch req.Need {
		case RoleRead:
			cmd = "/plan"
		case RoleApply:
			cmd = "/apply"
		default:
			cmd = "do this"
		}
	}
	who := "@" + strings.TrimPrefix(req.User, "@")
	if capped != nil && capped.Restrict <= req.Need {
		to := listNames(capped.Users, capped.Teams)
		if to == "" {
			to = "no one"
		}
		return &Refusal{Rule: capped.Name, Message: fmt.Sprintf("%s may not %s%s%s: role rule %q restricts %s there to %s",
			who, cmd, target(req.Project, req.Cluster), under.why(), capped.Name, capped.Restrict, to)}
	}
	repo := "the repository"
	if req.Repo != "" {
		repo = req.Repo
	}
	perm := req.Permission
	if perm == "" {
		perm = forge.PermNone
	}
	name := req.PermissionName
	if name == nil {
		name = func(p forge.Permission) string { return string(p) }
	}
	return &Refusal{Message: fmt.Sprintf("%s may not %s: their permission on %s is %s, %s needs %s (the %s role)",
		who, cmd, repo, name(perm), cmd, name(permissionFor(req.Need)), req.Need)}
}

// target is " web on prod-eu", " web", " on prod-eu" or "".
func target(project, cluster string) string {
	s := ""
	if project != "" {
		s = " " + project
	}
	if cluster != "" {
		s += " on " + cluster
	}
	return s
}

// listNames is "@alice, @org/sre".
func listNames(users, teams []string) string {
	var out []string
	for _, n := range append(append([]string{}, users...), teams...) {
		out = append(out, "@"+n)
	}
	return strings.Join(out, ", ")
}

// membership answers "is user listed?" for one user, asking the directory once per team.
type membership struct {
	dir   Directory
	user  string
	cache map[string]bool
}

func newMembership(dir Directory, user string) *membership {
	return &membership{dir: dir, user: strings.TrimPrefix(user, "@"), cache: map[string]bool{}}
}

func (m *membership) listed(ctx context.Context, users, teams []string) (bool, error) {
	for _, u := range users {
		if strings.EqualFold(u, m.user) {
			return true, nil
		}
	}
	for _, t := range teams {
		ok, err := m.member(ctx, t)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func (m *membership) member(ctx context.Context, team string) (bool, error) {
	key := strings.ToLower(team)
	if v, ok := m.cache[key]; ok {
		return v, nil
	}
	if m.dir == nil {
		return false, fmt.Errorf("policy: cannot check whether @%s is in @%s: no directory", m.user, team)
	}
	ok, err := m.dir.IsMember(ctx, team, m.user)
	if err != nil {
		return false, fmt.Errorf("policy: check whether @%s is in @%s: %w", m.user, team, err)
	}
	m.cache[key] = ok
	return ok, nil
}
