package policy

import "fmt"

// Target is a project on a cluster, as rules see it.
//
// A project's name, directory, namespace and clusters come from the pull request's own
// .kubeplan.yaml, so a rule scoped by project name would be shed by renaming the project in
// the pull request. The caller therefore also names what the base branch knows: Was lists the
// identities the same project has on the base branch when the pull request changed it (a
// rule matching any of them applies too), and New marks a project the base branch does not
// know at all, whose name is entirely the pull request's choice (every rule whose clusters
// match applies, whatever projects it names). Rules thus bind to the union of both sides and
// a pull request can only add rules to itself, never drop them.
type Target struct {
	Project, Cluster string
	// Was are the project × cluster pairs the project is on the base branch. Their own Was
	// and New are ignored.
	Was []Target
	// New: the base branch has no project this one could be.
	New bool
}

// matchedBy reports whether a rule's scope covers the target on either branch.
func (t Target) matchedBy(s Scope) bool {
	if s.Matches(t.Project, t.Cluster) || (t.New && matchAny(s.Clusters, t.Cluster)) {
		return true
	}
	for _, w := range t.Was {
		if s.Matches(w.Project, w.Cluster) {
			return true
		}
	}
	return false
}

// identity is one name a role rule is checked against; unknown is a project whose name
// cannot be trusted (new in the pull request): restrictions scoped to any project apply to
// it, grants scoped to projects do not.
type identity struct {
	project, cluster string
	was, unknown     bool
}

// identities lists the names roles are computed for; the target's role is the lowest.
func (t Target) identities() []identity {
	out := []identity{{project: t.Project, cluster: t.Cluster}}
	for _, w := range t.Was {
		if w.Project != t.Project || w.Cluster != t.Cluster {
			out = append(out, identity{project: w.Project, cluster: w.Cluster, was: true})
		}
	}
	if t.New {
		out = append(out, identity{cluster: t.Cluster, unknown: true})
	}
	return out
}

// why explains, in a refusal, why a rule about another name applies here: "" for the
// target's own name.
func (id identity) why() string {
	switch {
	case id.was:
		return fmt.Sprintf(" (%s on the base branch)", id.project+target("", id.cluster))
	case id.unknown:
		where := "everywhere"
		if id.cluster != "" {
			where = "on " + id.cluster
		}
		return fmt.Sprintf(" (new in this pull request, so every rule %s applies, whatever projects it names)", where)
	}
	return ""
}
