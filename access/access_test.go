package access

import (
	"errors"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/plan"
)

// The shop team may deploy to its namespaces on prod; the platform repository anywhere on
// prod, cluster-scoped objects included; staging names no rule and stays open to all.
var rules = Rules{
	{Repositories: []string{"acme/shop"}, Clusters: []string{"prod-*"}, Namespaces: []string{"shop", "shop-*"}},
	{Repositories: []string{"github:acme/platform"}, Clusters: []string{"prod-*"}},
	{Repositories: []string{"acme/infra/**"}, Clusters: []string{"prod-eu"}, Namespaces: []string{"infra"}, ClusterScoped: true},
}

func TestWhoMayDeployWhere(t *testing.T) {
	ns := func(namespace, kind, name string) plan.ObjectRef {
		return plan.ObjectRef{APIVersion: "v1", Kind: kind, Namespace: namespace, Name: name}
	}
	clusterRole := plan.ObjectRef{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding", Name: "admin"}
	for _, tc := range []struct {
		name                 string
		forge, repo, cluster string
		object               plan.ObjectRef
		refused              string // "" when permitted
	}{
		{"shop in its namespace", "github", "acme/shop", "prod-eu", ns("shop", "ConfigMap", "c"), ""},
		{"shop in a namespace matching its glob", "gitlab", "acme/shop", "prod-us", ns("shop-canary", "Service", "s"), ""},
		{"shop creates its Namespace", "github", "acme/shop", "prod-eu", ns("", "Namespace", "shop-canary"), ""},
		{"shop in another team's namespace", "github", "acme/shop", "prod-eu", ns("payments", "ConfigMap", "c"),
			"repository github:acme/shop may not touch namespace payments on cluster prod-eu (ConfigMap payments/c): the server's access list limits it to namespaces shop, shop-*"},
		{"shop creates another team's Namespace", "github", "acme/shop", "prod-eu", ns("", "Namespace", "payments"), "may not touch namespace payments"},
		{"shop binds cluster-admin", "github", "acme/shop", "prod-eu", clusterRole, "may not touch cluster-scoped ClusterRoleBinding admin on cluster prod-eu"},
		{"platform anywhere on prod", "github", "acme/platform", "prod-us", clusterRole, ""},
		{"platform's pattern is GitHub's only", "gitlab", "acme/platform", "prod-us", ns("x", "ConfigMap", "c"),
			"repository gitlab:acme/platform may not deploy to cluster prod-us: no rule of the server's access list grants it that cluster"},
		{"a subgroup project with cluster-scoped objects", "gitlab", "acme/infra/dns", "prod-eu", clusterRole, ""},
		{"the subgroup rule covers prod-eu only", "gitlab", "acme/infra/dns", "prod-us", ns("infra", "ConfigMap", "c"), "may not deploy to cluster prod-us"},
		{"a stranger on prod", "github", "mallory/shop", "prod-eu", ns("shop", "ConfigMap", "c"), "repository github:mallory/shop may not deploy to cluster prod-eu"},
		{"a stranger on a cluster no rule names", "github", "mallory/shop", "staging", clusterRole, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := rules.For(tc.forge, tc.repo, tc.cluster)
			if err == nil {
				err = g.Permits(tc.object)
			}
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && err == nil:
				t.Fatalf("permitted, want refused with %q", tc.refused)
			case tc.refused != "" && !strings.Contains(err.Error(), tc.refused):
				t.Fatalf("refusal %q does not say %q", err, tc.refused)
			}
			var r *Refusal
			if err != nil && !errors.As(err, &r) {
				t.Fatalf("refusal is %T, want *Refusal", err)
			}
		})
	}
}

// No rules: every repository may deploy everywhere, as before access rules existed.
func TestNoRulesGrantEverything(t *testing.T) {
	g, err := Rules(nil).For("github", "anyone/anything", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Permits(plan.ObjectRef{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "x"}); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	clusters := []string{"prod-eu", "prod-us", "staging"}
	if err := rules.Validate(clusters); err != nil {
		t.Fatalf("valid rules: %v", err)
	}
	bad := Rules{
		{Clusters: []string{"prod-eu"}},
		{Repositories: []string{"acme/["}, Clusters: []string{"prdo-*"}, Namespaces: []string{"shop-["}},
	}
	err := bad.Validate(clusters)
	for _, want := range []string{
		"access[0]: repositories is required",
		`access[1]: repository pattern "acme/[" is not valid`,
		`access[1]: cluster pattern "prdo-*" matches no configured cluster (prod-eu, prod-us, staging)`,
		`access[1]: namespace pattern "shop-[" is not valid`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation error %v lacks %q", err, want)
		}
	}
}
