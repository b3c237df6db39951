// Package policy decides who may plan and apply what, which approvals a pull request needs,
// and which manifest rules (CEL expressions) planned objects must pass.
//
// It is pure logic: the caller passes a Directory for team and group membership, the pull
// request's reviews and the CODEOWNERS of its checkout. A Policy is compiled once from the
// server's configuration and, optionally, a repository's .kubeplan.yaml; a repository can
// only add approval and manifest rules, and only those the server allows.
package policy

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kubeplan/kubeplan/plan"
)

// RepoFile is where a repository's policy comes from, named in its errors.
const RepoFile = ".kubeplan.yaml"

// ServerSource names the server configuration in errors.
const ServerSource = "server config"

// Scope limits a rule to projects and clusters (path.Match globs like "prod-*"); empty lists match all.
type Scope struct {
	Projects []string `json:"projects,omitempty"`
	Clusters []string `json:"clusters,omitempty"`
}

// Config is the `policy:` section of the server config and of a repository's .kubeplan.yaml.
type Config struct {
	Roles     []RoleRule     `json:"roles,omitempty"`
	Approvals []ApprovalRule `json:"approvals,omitempty"`
	Rules     []ManifestRule `json:"rules,omitempty"`
	// AllowedOverrides (server config only) lists what a repository's .kubeplan.yaml may add:
	// "approvals", "rules".
	AllowedOverrides []string `json:"allowedOverrides,omitempty"`
}

// RoleRule widens (Grant) or narrows (Restrict) the role people get from their forge
// permission, within its scope.
type RoleRule struct {
	Name  string `json:"name"`
	Scope `json:",inline"`
	// Users are forge logins.
	Users []string `json:"users,omitempty"`
	// Teams are GitHub "org/team-slug" or GitLab group paths "group/sub".
	Teams []string `json:"teams,omitempty"`
	// Grant gives the listed users and teams at least this role in scope.
	Grant Role `json:"grant,omitempty"`
	// Restrict keeps this role and above, in scope, for the listed users and teams; everyone
	// else is capped below it.
	Restrict Role `json:"restrict,omitempty"`
}

// ApprovalRule is a requirement on a pull request's approvals; every rule whose scope matches
// one of the pull request's targets must be satisfied.
type ApprovalRule struct {
	Name         string `json:"name"`
	Scope        `json:",inline"`
	MinApprovals int `json:"minApprovals,omitempty"`
	// Teams each need at least one approval from a member.
	Teams []string `json:"teams,omitempty"`
	// CodeOwners: every changed file with owners needs an approval from one of its owners.
	CodeOwners bool `json:"codeOwners,omitempty"`
	// CountStaleApprovals counts approvals given on an older head; by default they don't count.
	CountStaleApprovals bool `json:"countStaleApprovals,omitempty"`
}

// ManifestRule is a CEL expression planned objects must pass, like a ValidatingAdmissionPolicy.
type ManifestRule struct {
	Name  string `json:"name"`
	Scope `json:",inline"`
	// Kinds are "Deployment" (any group) or "apps/Deployment" ("core/Service" for the core
	// group); empty means all kinds.
	Kinds []string `json:"kinds,omitempty"`
	// Actions are create, update, delete, unchanged; empty means create, update and delete.
	Actions []string `json:"actions,omitempty"`
	// Expr must evaluate to true for the object to pass. Variables: object, oldObject (maps,
	// or null), action, project, cluster (strings), pr (map: repo, number, author, baseRef,
	// headRef).
	Expr    string `json:"expr"`
	Message string `json:"message"`
	// Severity is deny (default) or warn.
	Severity plan.Severity `json:"severity,omitempty"`
}

// Error is a problem with a policy configuration, naming where it came from (the server
// config or .kubeplan.yaml) and worded for a pull request comment.
type Error struct {
	Source string // ServerSource or RepoFile
	Reason string
}

func (e *Error) Error() string { return e.Source + ": " + e.Reason }

// ParseConfig reads a policy section on its own (YAML or JSON). Unknown keys are errors.
// The result still has to go through Compile.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return Config{}, fmt.Errorf("policy: %w", err)
	}
	return c, nil
}

// IsZero reports whether the configuration sets nothing.
func (c Config) IsZero() bool {
	return len(c.Roles) == 0 && len(c.Approvals) == 0 && len(c.Rules) == 0 && len(c.AllowedOverrides) == 0
}

// Overridable are the keys a server may let repositories set.
var Overridable = []string{"approvals", "rules"}

// Policy is a compiled, validated policy: the server's rules plus those a repository added.
// It is immutable once compiled: Extend returns a new Policy and shares the compiled rules.
type Policy struct {
	roles     []RoleRule
	approvals []approvalRule
	rules     []*manifestRule
	// overrides are the server's AllowedOverrides: what Extend lets a repository add.
	overrides []string
	// extended is set once a repository's rules are in; only the server's policy extends.
	extended bool
}

type approvalRule struct {
	ApprovalRule
	source string
}

// Compile validates and merges the server's policy with a repository's (repo may be nil).
// A repository may only add approval and manifest rules, and only those the server's
// AllowedOverrides permit; since every approval rule in scope must be satisfied, adding
// rules only ever raises requirements.
func Compile(server Config, repo *Config) (*Policy, error) {
	for _, o := range server.AllowedOverrides {
		if !slices.Contains(Overridable, o) {
			return nil, &Error{ServerSource, fmt.Sprintf("policy.allowedOverrides: %q cannot be overridden by repositories (want %s)", o, strings.Join(Overridable, " or "))}
		}
	}
	p := &Policy{overrides: slices.Clone(server.AllowedOverrides)}
	if err := p.add(server, ServerSource); err != nil {
		return nil, err
	}
	if repo == nil {
		return p, nil
	}
	return p.Extend(repo)
}

// Extend returns the server's policy p with a repository's rules added (repo may be nil),
// so the server compiles its own rules once, at start, and each event compiles only the
// repository's. A nil p is the empty server policy.
func (p *Policy) Extend(repo *Config) (*Policy, error) {
	if p == nil {
		p = &Policy{}
	}
	if p.extended {
		return nil, fmt.Errorf("policy: a repository's rules are already in; extend the server's policy")
	}
	if repo == nil {
		return p, nil
	}
	allowed := func(key string) bool { return slices.Contains(p.overrides, key) }
	switch {
	case len(repo.Roles) > 0:
		return nil, &Error{RepoFile, "the server does not let repositories set policy.roles"}
	case len(repo.AllowedOverrides) > 0:
		return nil, &Error{RepoFile, "policy.allowedOverrides can only be set in the server config"}
	case len(repo.Approvals) > 0 && !allowed("approvals"):
		return nil, &Error{RepoFile, "the server does not let repositories set policy.approvals"}
	case len(repo.Rules) > 0 && !allowed("rules"):
		return nil, &Error{RepoFile, "the server does not let repositories set policy.rules"}
	}
	// Full slice expressions: appending to the copy never writes into the server's arrays.
	out := &Policy{roles: p.roles[:len(p.roles):len(p.roles)], approvals: p.approvals[:len(p.approvals):len(p.approvals)],
		rules: p.rules[:len(p.rules):len(p.rules)], overrides: p.overrides, extended: true}
	if err := out.add(*repo, RepoFile); err != nil {
		return nil, err
	}
	return out, nil
}

// add validates c's rules and appends them; names must stay unique within each list.
func (p *Policy) add(c Config, source string) error {
	fail := func(format string, args ...any) error {
		return &Error{Source: source, Reason: fmt.Sprintf(format, args...)}
	}
	for i, r := range c.Roles {
		what, err := checkName("role", i, r.Name, source, func(n string) string {
			if slices.ContainsFunc(p.roles, func(o RoleRule) bool { return o.Name == n }) {
				return ServerSource
			}
			return ""
		})
		if err != nil {
			return fail("%v", err)
		}
		if err := r.Scope.validate(); err != nil {
			return fail("%s: %v", what, err)
		}
		if !r.Grant.valid() || !r.Restrict.valid() {
			return fail("%s: unknown role (want none, read, apply or admin)", what)
		}
		if r.Grant == RoleNone && r.Restrict == RoleNone {
			return fail("%s: set grant or restrict (read, apply or admin)", what)
		}
		if r.Grant != RoleNone && len(r.Users)+len(r.Teams) == 0 {
			return fail("%s: grant needs users or teams", what)
		}
		var err2 error
		if r.Users, err2 = cleanNames(r.Users, false); err2 != nil {
			return fail("%s: users: %v", what, err2)
		}
		if r.Teams, err2 = cleanNames(r.Teams, true); err2 != nil {
			return fail("%s: teams: %v", what, err2)
		}
		p.roles = append(p.roles, r)
	}
	for i, r := range c.Approvals {
		what, err := checkName("approval", i, r.Name, source, func(n string) string {
			if j := slices.IndexFunc(p.approvals, func(o approvalRule) bool { return o.Name == n }); j >= 0 {
				return p.approvals[j].source
			}
			return ""
		})
		if err != nil {
			return fail("%v", err)
		}
		if err := r.Scope.validate(); err != nil {
			return fail("%s: %v", what, err)
		}
		if r.MinApprovals < 0 {
			return fail("%s: minApprovals must not be negative", what)
		}
		if r.Teams, err = cleanNames(r.Teams, true); err != nil {
			return fail("%s: teams: %v", what, err)
		}
		if r.MinApprovals == 0 && len(r.Teams) == 0 && !r.CodeOwners {
			return fail("%s: requires nothing (set minApprovals, teams or codeOwners)", what)
		}
		p.approvals = append(p.approvals, approvalRule{r, source})
	}
	for i, r := range c.Rules {
		what, err := checkName("policy", i, r.Name, source, func(n string) string {
			if j := slices.IndexFunc(p.rules, func(o *manifestRule) bool { return o.Name == n }); j >= 0 {
				return p.rules[j].source
			}
			return ""
		})
		if err != nil {
			return fail("%v", err)
		}
		mr, err := compileRule(r, source)
		if err != nil {
			return fail("%s: %v", what, err)
		}
		p.rules = append(p.rules, mr)
	}
	return nil
}

// checkName returns how errors name the rule: `policy rule "x"`. definedIn says where a
// rule of that name already is, "" if nowhere.
func checkName(kind string, i int, name, source string, definedIn func(string) string) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", fmt.Errorf("%s rule #%d has no name", kind, i+1)
	}
	what := fmt.Sprintf("%s rule %q", kind, name)
	switch prev := definedIn(name); prev {
	case "":
		return what, nil
	case source:
		return "", fmt.Errorf("%s is defined twice", what)
	default:
		return "", fmt.Errorf("%s is already defined in the %s", what, prev)
	}
}

var (
	userName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	teamName = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
)

// cleanNames strips a leading "@" and checks the form: "login", or "org/team" for teams.
func cleanNames(in []string, teams bool) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, n := range in {
		n = strings.TrimPrefix(strings.TrimSpace(n), "@")
		switch {
		case teams && !teamName.MatchString(n):
			return nil, fmt.Errorf("%q is not org/team or group/subgroup", n)
		case !teams && !userName.MatchString(n):
			return nil, fmt.Errorf("%q is not a login", n)
		}
		out = append(out, n)
	}
	return out, nil
}

func (s Scope) validate() error {
	for _, list := range []struct {
		key   string
		globs []string
	}{{"projects", s.Projects}, {"clusters", s.Clusters}} {
		for _, g := range list.globs {
			if g == "" {
				return fmt.Errorf("%s: empty pattern", list.key)
			}
			if _, err := path.Match(g, ""); err != nil {
				return fmt.Errorf("%s: pattern %q is not valid", list.key, g)
			}
		}
	}
	return nil
}

// Matches reports whether a project on a cluster is in scope.
func (s Scope) Matches(project, cluster string) bool {
	return matchAny(s.Projects, project) && matchAny(s.Clusters, cluster)
}

// matchesMaybe is Matches where an empty project or cluster is unknown and may be anything:
// restrictions must apply to it.
func (s Scope) matchesMaybe(project, cluster string) bool {
	return (project == "" || matchAny(s.Projects, project)) && (cluster == "" || matchAny(s.Clusters, cluster))
}

func matchAny(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// String describes the scope for people: "web, api on prod-*", "all projects on staging",
// "everywhere".
func (s Scope) String() string {
	switch {
	case len(s.Projects) == 0 && len(s.Clusters) == 0:
		return "everywhere"
	case len(s.Clusters) == 0:
		return strings.Join(s.Projects, ", ") + " on all clusters"
	case len(s.Projects) == 0:
		return "all projects on " + strings.Join(s.Clusters, ", ")
	default:
		return strings.Join(s.Projects, ", ") + " on " + strings.Join(s.Clusters, ", ")
	}
}

// HasRules reports whether there are manifest rules to check.
func (p *Policy) HasRules() bool { return p != nil && len(p.rules) > 0 }

// HasApprovalRules reports whether any approval rule exists (in any scope).
func (p *Policy) HasApprovalRules() bool { return p != nil && len(p.approvals) > 0 }

// HasRoleRules reports whether any role rule exists.
func (p *Policy) HasRoleRules() bool { return p != nil && len(p.roles) > 0 }

// RuleNames lists the manifest rules, in order, for display.
func (p *Policy) RuleNames() []string {
	if p == nil {
		return nil
	}
	out := make([]string, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.Name
	}
	return out
}
