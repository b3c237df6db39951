// Package access decides which repositories may deploy to which clusters and namespaces, from
// the server's access rules. A cluster that no rule names is open to every repository the
// server serves; a cluster some rule names is open only to what those rules grant.
package access

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/kubeplan/kubeplan/plan"
)

// Rule grants repositories some clusters and namespaces.
type Rule struct {
	// Repositories are globs of repository paths: "acme/shop", "acme/*" (one level),
	// "acme/**" (GitLab subgroups too). A "github:" or "gitlab:" prefix limits a pattern to
	// that forge. Required.
	Repositories []string `json:"repositories"`
	// Clusters are globs of cluster names the rule governs; empty means every cluster.
	Clusters []string `json:"clusters,omitempty"`
	// Namespaces are globs of the namespaces the repositories may touch there (objects in
	// them, the Namespace objects themselves, the project's inventory); empty means every
	// namespace and cluster-scoped objects.
	Namespaces []string `json:"namespaces,omitempty"`
	// ClusterScoped lets the repositories touch cluster-scoped objects other than Namespaces
	// (ClusterRoles, CRDs, …) where Namespaces narrows the rule. A binding to cluster-admin
	// is cluster-scoped: a rule limited to namespaces is worth nothing without this limit.
	ClusterScoped bool `json:"clusterScoped,omitempty"`
}

// Rules are the server's access rules, in configuration order.
type Rules []Rule

// Validate checks the rules against the registered cluster names: a rule needs repositories,
// its globs must be valid, and each cluster glob must name a registered cluster (a typo
// would otherwise leave the cluster it meant open to everyone).
func (rs Rules) Validate(clusters []string) error {
	var errs []string
	for i, r := range rs {
		at := fmt.Sprintf("access[%d]", i)
		if len(r.Repositories) == 0 {
			errs = append(errs, at+": repositories is required")
		}
		for _, g := range r.Repositories {
			_, p := splitForge(g)
			if !doublestar.ValidatePattern(p) || p == "" {
				errs = append(errs, fmt.Sprintf("%s: repository pattern %q is not valid", at, g))
			}
		}
		for _, g := range r.Clusters {
			if _, err := path.Match(g, ""); err != nil {
				errs = append(errs, fmt.Sprintf("%s: cluster pattern %q is not valid", at, g))
				continue
			}
			if !matchAny([]string{g}, clusters) {
				errs = append(errs, fmt.Sprintf("%s: cluster pattern %q matches no configured cluster (%s)", at, g, strings.Join(clusters, ", ")))
			}
		}
		for _, g := range r.Namespaces {
			if _, err := path.Match(g, ""); err != nil {
				errs = append(errs, fmt.Sprintf("%s: namespace pattern %q is not valid", at, g))
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Grant is what one repository may touch on one cluster.
type Grant struct {
	// Repository ("github:acme/shop") and Cluster name the grant in refusals.
	Repository, Cluster string
	all                 bool
	namespaces          []string // globs, from every rule that grants the repository here
	clusterScoped       bool
}

// Refusal is a repository asking for what the access rules do not grant it.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

// For returns the grant of a repository of a forge ("github", "gitlab") on a cluster, or a
// *Refusal when the rules that govern the cluster grant it nothing.
func (rs Rules) For(forge, repo, cluster string) (Grant, error) {
	g := Grant{Repository: forge + ":" + repo, Cluster: cluster}
	governed := false
	granted := false
	for _, r := range rs {
		if len(r.Clusters) > 0 && !matchAny(r.Clusters, []string{cluster}) {
			continue
		}
		governed = true
		if !repoMatches(r.Repositories, forge, repo) {
			continue
		}
		granted = true
		if len(r.Namespaces) == 0 {
			g.all = true
		}
		g.namespaces = append(g.namespaces, r.Namespaces...)
		g.clusterScoped = g.clusterScoped || r.ClusterScoped
	}
	switch {
	case !governed:
		g.all = true
	case !granted:
		return Grant{}, &Refusal{Reason: fmt.Sprintf("repository %s may not deploy to cluster %s: no rule of the server's access list grants it that cluster", g.Repository, cluster)}
	}
	return g, nil
}

// Permits refuses an object outside the grant. A Namespace object counts as its namespace;
// other cluster-scoped objects need a rule that allows them.
func (g Grant) Permits(ref plan.ObjectRef) error {
	if g.all {
		return nil
	}
	ns := ref.Namespace
	switch {
	case ns == "" && ref.Kind == "Namespace" && ref.Group() == "":
		ns = ref.Name
	case ns == "":
		if g.clusterScoped {
			return nil
		}
		return &Refusal{Reason: fmt.Sprintf("repository %s may not touch cluster-scoped %s on cluster %s: the server's access list limits it to namespaces %s",
			g.Repository, ref, g.Cluster, strings.Join(g.namespaces, ", "))}
	}
	if matchAny(g.namespaces, []string{ns}) {
		return nil
	}
	return &Refusal{Reason: fmt.Sprintf("repository %s may not touch namespace %s on cluster %s (%s): the server's access list limits it to namespaces %s",
		g.Repository, ns, g.Cluster, ref, strings.Join(g.namespaces, ", "))}
}

// repoMatches matches forge:repo against repository globs.
func repoMatches(globs []string, forge, repo string) bool {
	for _, g := range globs {
		f, p := splitForge(g)
		if f != "" && f != forge {
			continue
		}
		if ok, _ := doublestar.Match(p, repo); ok {
			return true
		}
	}
	return false
}

// splitForge splits "github:acme/*" into its forge and pattern; no prefix means any forge.
func splitForge(g string) (forge, pattern string) {
	if f, p, ok := strings.Cut(g, ":"); ok && (f == "github" || f == "gitlab") {
		return f, p
	}
	return "", g
}

// matchAny reports whether any glob matches any of the names.
func matchAny(globs, names []string) bool {
	for _, g := range globs {
		for _, n := range names {
			if ok, _ := path.Match(g, n); ok {
				return true
			}
		}
	}
	return false
}
