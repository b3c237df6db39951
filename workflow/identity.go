package workflow

import (
	"slices"
	"strings"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/repoconfig"
)

// kin is what the base branch knows of a project of the pull request's configuration. Names,
// directories, namespaces and clusters all come from the pull request's .kubeplan.yaml, so
// policy must not take them on trust: a project whose identity the pull request changed is
// held to the rules of every base-branch project it could be, and one the base branch has no
// trace of to every rule of its clusters (see policy.Target).
type kin struct {
	// changed: no base-branch project has this name, directory, namespace and clusters.
	changed bool
	// base are the base-branch projects that share its name, its directory, or its namespace
	// on one of its clusters; why says which, per project.
	base []repoconfig.Project
	why  []string
}

// isNew: the pull request brings a project the base branch cannot be matched to.
func (k kin) isNew() bool { return k.changed && len(k.base) == 0 }

// relate finds the kin of each project of head (by name) in base. A nil base (no base tree to
// compare with) leaves every project unchanged.
func relate(head, base *repoconfig.Config, defaultCluster string) map[string]kin {
	out := map[string]kin{}
	if head == nil {
		return out
	}
	for _, h := range head.Projects {
		k := kin{}
		if base != nil {
			k.changed = !slices.ContainsFunc(base.Projects, func(b repoconfig.Project) bool { return sameIdentity(h, b, defaultCluster) })
			for _, b := range base.Projects {
				if why := kinship(h, b, defaultCluster); why != "" {
					k.base, k.why = append(k.base, b), append(k.why, why)
				}
			}
		}
		out[h.Name] = k
	}
	return out
}

// kinship says how two projects are the same one ("same directory apps/web"), "" if they are not.
func kinship(a, b repoconfig.Project, defaultCluster string) string {
	var how []string
	if a.Name == b.Name {
		how = append(how, "same name")
	}
	if a.Dir == b.Dir {
		how = append(how, "same directory "+a.Dir)
	}
	if ns := namespaceOf(a); ns == namespaceOf(b) && slices.ContainsFunc(clustersOf(a, defaultCluster), func(c string) bool {
		return slices.Contains(clustersOf(b, defaultCluster), c)
	}) {
		how = append(how, "same namespace "+ns)
	}
	return strings.Join(how, ", ")
}

func sameIdentity(a, b repoconfig.Project, defaultCluster string) bool {
	ca, cb := clustersOf(a, defaultCluster), clustersOf(b, defaultCluster)
	slices.Sort(ca)
	slices.Sort(cb)
	return a.Name == b.Name && a.Dir == b.Dir && namespaceOf(a) == namespaceOf(b) && slices.Equal(ca, cb)
}

// namespaceOf is the namespace a project's objects default to, as planning uses it.
func namespaceOf(p repoconfig.Project) string {
	if p.Namespace == "" {
		return "default"
	}
	return p.Namespace
}

// clustersOf is where a project is planned and applied.
func clustersOf(p repoconfig.Project, defaultCluster string) []string {
	if len(p.Clusters) == 0 {
		return []string{defaultCluster}
	}
	return slices.Clone(p.Clusters)
}

// target is how policy sees a project on a cluster: by its name in the pull request and, when
// the pull request changed the project, by the names of its base-branch kin on their clusters
// and this one.
func (k kin) target(project, cluster, defaultCluster string) policy.Target {
	t := policy.Target{Project: project, Cluster: cluster}
	if !k.changed {
		return t
	}
	t.New = k.isNew()
	type name struct{ project, cluster string }
	seen := map[name]bool{{project, cluster}: true}
	for _, b := range k.base {
		for _, c := range append(clustersOf(b, defaultCluster), cluster) {
			if n := (name{b.Name, c}); !seen[n] {
				seen[n] = true
				t.Was = append(t.Was, policy.Target{Project: b.Name, Cluster: c})
			}
		}
	}
	return t
}

// note tells the pull request why rules of other names apply to a project, "" when none do.
func (k kin) note(project string) string {
	switch {
	case !k.changed:
		return ""
	case k.isNew():
		return comments.NewProject(project)
	}
	was := make([]comments.Kin, len(k.base))
	for i, b := range k.base {
		was[i] = comments.Kin{Name: b.Name, Why: k.why[i]}
	}
	return comments.Changed(project, was)
}
