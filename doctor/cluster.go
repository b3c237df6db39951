package doctor

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/cluster"
)

// Access is something kubeplan does on a cluster: verbs on a kind (Group "*" and Resource "*":
// every kind).
type Access struct {
	Verbs    []string
	Group    string
	Resource string
	// Why says what kubeplan does with it.
	Why string
}

// ClusterAccess is what kubeplan's cluster identity must be allowed, listed once (docs/forges.md
// and the deployment's RBAC follow it). kinds are the managed kinds ("deployments.apps"); empty:
// every kind.
func ClusterAccess(kinds []string) []Access {
	managed := []string{"get", "list", "create", "patch", "delete"}
	why := "plan (server-side apply dry-run), apply and prune what projects hold"
	out := []Access{{Verbs: []string{"get", "create", "patch"}, Resource: "configmaps", Why: "each project's inventory (ApplySet parent ConfigMap)"}}
	if len(kinds) == 0 {
		return append(out, Access{Verbs: managed, Group: "*", Resource: "*", Why: why})
	}
	for _, k := range kinds {
		resource, group, _ := strings.Cut(k, ".")
		out = append(out, Access{Verbs: managed, Group: group, Resource: resource, Why: why})
	}
	return out
}

var (
	ssarGVR = schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "selfsubjectaccessreviews"}
	ssrGVR  = schema.GroupVersionResource{Group: "authentication.k8s.io", Version: "v1", Resource: "selfsubjectreviews"}
)

// checkCluster connects to a cluster and asks it, per verb and kind (and namespace, for a
// namespaced install), whether kubeplan's identity may do what kubeplan does.
func checkCluster(ctx context.Context, t cluster.Target, o Options) Result {
	subject := "cluster " + t.Name
	cfg, err := cluster.RESTConfig(t)
	if err != nil {
		return fail(subject, "correct its kubeconfig, context or in-cluster setting in clusters:", "%v", strings.TrimPrefix(err.Error(), subject+": "))
	}
	tune := cluster.DefaultTuning()
	tune.Timeout = o.Timeout
	c, err := cluster.ConnectConfig(ctx, t.Name, cfg, tune)
	if err != nil {
		return fail(subject, "check the apiserver address and credentials in its kubeconfig, and the network path from kubeplan to it",
			"unreachable: %v", strings.TrimPrefix(err.Error(), subject+": "))
	}
	who := whoAmI(ctx, c)
	scopes := o.Namespaces
	if len(scopes) == 0 {
		scopes = []string{""}
	}
	// One entry per kind and namespace: "get, create, patch configmaps in namespace web".
	var denied []string
	for _, ns := range scopes {
		for _, a := range ClusterAccess(o.Kinds) {
			var verbs, reasons []string
			for _, verb := range a.Verbs {
				allowed, reason, err := mayI(ctx, c, verb, a.Group, a.Resource, ns)
				if err != nil {
					return fail(subject, "let the identity create selfsubjectaccessreviews (every authenticated user may by default)", "%s: ask what it may do: %v", who, err)
				}
				if !allowed {
					verbs = append(verbs, verb)
					if reason != "" {
						reasons = append(reasons, reason)
					}
				}
			}
			if len(verbs) > 0 {
				d := fmt.Sprintf("%s %s %s", strings.Join(verbs, ", "), kindName(a.Group, a.Resource), where(ns))
				if len(reasons) > 0 {
					d += " (" + reasons[0] + ")"
				}
				denied = append(denied, d)
			}
		}
	}
	grant := "grant them to kubeplan's identity in a ClusterRole (docs/forges.md)"
	if len(o.Namespaces) > 0 {
		grant = "grant them to kubeplan's identity in a Role in each namespace (docs/forges.md)"
	}
	if len(denied) > 0 {
		return fail(subject, grant, "%s may not %s", who, strings.Join(denied, "; "))
	}
	scope := "cluster-wide"
	if len(o.Namespaces) > 0 {
		scope = "in namespaces " + strings.Join(o.Namespaces, ", ")
	}
	return ok(subject, "reachable (%s); %s may do what kubeplan does %s", c.Version, who, scope)
}

func kindName(group, resource string) string {
	switch {
	case resource == "*":
		return "every kind"
	case group == "":
		return resource
	}
	return resource + "." + group
}

func where(ns string) string {
	if ns == "" {
		return "cluster-wide"
	}
	return "in namespace " + ns
}

// whoAmI names the identity (SelfSubjectReview); an apiserver that does not say is "the identity".
func whoAmI(ctx context.Context, c *cluster.Client) string {
	review := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}}
	got, err := c.Dynamic.Resource(ssrGVR).Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return "the identity"
	}
	if name, _, _ := unstructured.NestedString(got.Object, "status", "userInfo", "username"); name != "" {
		return fmt.Sprintf("%q", name)
	}
	return "the identity"
}

// mayI asks the apiserver whether the identity may do verb on the kind in ns ("" cluster-wide).
func mayI(ctx context.Context, c *cluster.Client, verb, group, resource, ns string) (bool, string, error) {
	attrs := map[string]any{"verb": verb, "group": group, "resource": resource}
	if ns != "" {
		attrs["namespace"] = ns
	}
	review := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
		"spec": map[string]any{"resourceAttributes": attrs}}}
	got, err := c.Dynamic.Resource(ssarGVR).Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	allowed, _, _ := unstructured.NestedBool(got.Object, "status", "allowed")
	reason, _, _ := unstructured.NestedString(got.Object, "status", "evaluationError")
	return allowed, reason, nil
}
