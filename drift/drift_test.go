package drift

import (
	"testing"
)

func TestOwnedByDesign(t *testing.T) {
	scale := Owner{Manager: "kube-controller-manager", Operation: "Update", Subresource: "scale"}
	byHand := Owner{Manager: "kubectl", Operation: "Update", Subresource: "scale"}
	injector := Owner{Manager: "cert-manager-cainjector", Operation: "Update"}
	caBundle := `.webhooks[name="v.example.com"].clientConfig.caBundle`
	cases := []struct {
		name   string
		s      Settings
		kind   string
		field  Field
		counts bool
	}{
		{"HPA replicas", Settings{}, "Deployment", Field{Path: ".spec.replicas", Owners: []Owner{scale}}, false},
		{"HPA replicas with the defaults off", Settings{NoDefaults: true}, "Deployment", Field{Path: ".spec.replicas", Owners: []Owner{scale}}, true},
		{"replicas scaled by hand", Settings{}, "Deployment", Field{Path: ".spec.replicas", Owners: []Owner{byHand}}, true},
		{"shared with a person", Settings{}, "Deployment", Field{Path: ".spec.replicas", Owners: []Owner{scale, byHand}}, true},
		{"injected CA bundle", Settings{}, "ValidatingWebhookConfiguration", Field{Path: caBundle, Owners: []Owner{injector}}, false},
		{"caBundle-like field of another kind", Settings{}, "ConfigMap", Field{Path: ".data.caBundle", Owners: []Owner{injector}}, true},
		{"removed field, rule about owners", Settings{}, "Deployment", Field{Path: ".spec.replicas", Cause: Removed}, true},
		{"project rule by path, any owner", Settings{Ignore: []Rule{{Path: ".metadata.annotations"}}}, "Service",
			Field{Path: ".metadata.annotations.example.com/x", Cause: Removed}, false},
		{"path rule does not match a longer name", Settings{Ignore: []Rule{{Path: ".spec.replica"}}}, "Deployment",
			Field{Path: ".spec.replicas", Owners: []Owner{byHand}}, true},
		{"path rule with a list key wildcard", Settings{Ignore: []Rule{{Path: ".spec.template.spec.containers[*].resources"}}}, "Deployment",
			Field{Path: `.spec.template.spec.containers[name="web"].resources.limits.cpu`, Owners: []Owner{{Manager: "vpa", Operation: "Update"}}}, false},
		{"manager glob", Settings{Ignore: []Rule{{Manager: "argo*"}}}, "Deployment", Field{Path: ".spec.paused", Owners: []Owner{{Manager: "argocd-controller", Operation: "Apply"}}}, false},
		{"manager glob, other manager", Settings{Ignore: []Rule{{Manager: "argo*"}}}, "Deployment", Field{Path: ".spec.paused", Owners: []Owner{{Manager: "flux", Operation: "Apply"}}}, true},
		{"operation", Settings{Ignore: []Rule{{Manager: "flux", Operation: "Update"}}}, "Deployment", Field{Path: ".spec.paused", Owners: []Owner{{Manager: "flux", Operation: "Apply"}}}, true},
		{"kind", Settings{Ignore: []Rule{{Kinds: []string{"StatefulSet"}, Path: ".spec.replicas"}}}, "Deployment", Field{Path: ".spec.replicas", Owners: []Owner{byHand}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			why := byDesign(compile(tc.s), tc.kind, tc.field)
			if counts := why == ""; counts != tc.counts {
				t.Fatalf("counts as drift: %v, want %v (why %q)", counts, tc.counts, why)
			}
		})
	}
}
