// Package manifest holds a rendered Kubernetes object and where it came from: plain data shared
// by the renderers that produce it and the planner and applier that consume it, so neither of
// those has to compile Helm or Kustomize.
package manifest

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CRDKinds lists the served group/version/kinds the CustomResourceDefinitions among objs
// define, each with whether it is namespaced: objects of those kinds can be planned and applied
// before the cluster knows them.
func CRDKinds(objs []Object) map[schema.GroupVersionKind]bool {
	kinds := map[schema.GroupVersionKind]bool{}
	for _, o := range objs {
		if o.Unstructured == nil || o.GetKind() != "CustomResourceDefinition" || !strings.HasPrefix(o.GetAPIVersion(), "apiextensions.k8s.io/") {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		for _, v := range versions {
			vm, ok := v.(map[string]any)
			if !ok {
				continue
			}
			if served, ok := vm["served"].(bool); ok && !served {
				continue
			}
			name, _ := vm["name"].(string)
			kinds[schema.GroupVersionKind{Group: group, Version: name, Kind: kind}] = scope != "Cluster"
		}
	}
	return kinds
}
