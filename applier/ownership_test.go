package applier_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/access"
	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/outcome"
)

var seq atomic.Int64

// unique names a namespace (or API group) for one run of one test, so that -count=2 works on
// the same cluster.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

const (
	owner    = "github:acme/shop"
	stranger = "github:mallory/shop"
)

// parentOwner reads the owning repository an inventory records.
func parentOwner(t *testing.T, c *cluster.Client, inv inventory.Set) string {
	t.Helper()
	p := live(t, c, configMapsGVR, inv.ParentNamespace, inv.ParentName)
	if p == nil {
		t.Fatalf("no inventory configmap %s/%s", inv.ParentNamespace, inv.ParentName)
	}
	return inventory.Owner(p)
}

// A stranger's repository that declares the same project name and namespace cannot apply over
// the owner's inventory: the apply is refused before anything is written, naming the owner.
func TestAnotherRepositorysInventoryIsNotApplied(t *testing.T) {
	c := connect(t)
	ns := unique("owned")
	createNamespace(t, c, ns)
	inv := inventory.ForProject("shop", ns)

	r := apply(t, c, applier.Request{Project: "shop", Namespace: ns, Repository: owner, Prune: true,
		Objects: objects(t, configMapYAML("settings", "s3cret"), serviceYAML("web", ""))})
	if r.Failed() || parentOwner(t, c, inv) != owner {
		t.Fatalf("the owner's apply: failed %v, owner %q\n%s", r.Failed(), parentOwner(t, c, inv), describe(r))
	}

	// The stranger renders only their own ConfigMap: applied, it would prune the owner's objects.
	_, err := fast().Apply(context.Background(), c, applier.Request{Project: "shop", Namespace: ns, Repository: stranger, Prune: true,
		Objects: objects(t, configMapYAML("mine", "x"))})
	var foreign *inventory.ForeignError
	if !errors.As(err, &foreign) || foreign.Owner != owner || !strings.Contains(err.Error(), "belongs to repository "+owner) {
		t.Fatalf("the stranger's apply: %v, want the inventory refused naming %s", err, owner)
	}
	if live(t, c, configMapsGVR, ns, "mine") != nil {
		t.Error("the stranger's object was applied")
	}
	if live(t, c, configMapsGVR, ns, "settings") == nil || live(t, c, servicesGVR, ns, "web") == nil {
		t.Error("the owner's objects were pruned")
	}
	if got := parentOwner(t, c, inv); got != owner {
		t.Errorf("owner is now %q", got)
	}

	// An apply that names no repository keeps the owner the parent records.
	r = apply(t, c, applier.Request{Project: "shop", Namespace: ns, Prune: true,
		Objects: objects(t, configMapYAML("settings", "s3cret"), serviceYAML("web", ""))})
	if r.Failed() || parentOwner(t, c, inv) != owner {
		t.Fatalf("an apply without a repository: failed %v, owner %q", r.Failed(), parentOwner(t, c, inv))
	}
}

// An inventory written before kubeplan recorded owners is claimed by the next apply, and is
// closed to other repositories from then on.
func TestUnownedInventoryIsClaimedByTheFirstApply(t *testing.T) {
	c := connect(t)
	ns := unique("unowned")
	createNamespace(t, c, ns)
	inv := inventory.ForProject("shop", ns)
	apply(t, c, applier.Request{Project: "shop", Namespace: ns, Objects: objects(t, configMapYAML("settings", "a"))})
	if got := parentOwner(t, c, inv); got != "" {
		t.Fatalf("owner %q after an apply without a repository", got)
	}
	r := apply(t, c, applier.Request{Project: "shop", Namespace: ns, Repository: owner, Objects: objects(t, configMapYAML("settings", "b"))})
	if got := parentOwner(t, c, inv); got != owner || !hasNote(r, "inventory configmap "+ns+"/"+inv.ParentName+" recorded no owning repository: it now records "+owner) {
		t.Fatalf("owner %q after the first apply by %s\n%s", got, owner, describe(r))
	}
	if _, err := fast().Apply(context.Background(), c, applier.Request{Project: "shop", Namespace: ns, Repository: stranger,
		Objects: objects(t, configMapYAML("settings", "c"))}); !errors.As(err, new(*inventory.ForeignError)) {
		t.Fatalf("a second repository after the claim: %v", err)
	}
}

// A manifest that names a ConfigMap like an inventory's parent is refused: applied with
// kubeplan's own field manager, it would rewrite the inventory and its owner.
func TestManifestsCannotRewriteAnInventory(t *testing.T) {
	c := connect(t)
	ns := unique("reserved")
	createNamespace(t, c, ns)
	inv := inventory.ForProject("shop", ns)
	apply(t, c, applier.Request{Project: "shop", Namespace: ns, Repository: owner, Objects: objects(t, configMapYAML("settings", "a"))})

	forged := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  annotations: {%s: %q}\n", inv.ParentName, inventory.AnnotationRepository, stranger)
	r := apply(t, c, applier.Request{Project: "evil", Namespace: ns, Repository: stranger, Objects: objects(t, forged)})
	if o := expect(t, r, "ConfigMap "+ns+"/"+inv.ParentName, outcome.Failed); !strings.Contains(o.Error, "reserved for kubeplan's inventories") {
		t.Errorf("refusal: %q", o.Error)
	}
	if got := parentOwner(t, c, inv); got != owner {
		t.Fatalf("the forged manifest changed the owner to %q", got)
	}
}

// Access rules hold an apply to its namespaces: an object elsewhere refuses the whole apply.
func TestApplyOutsideTheRepositorysNamespacesIsRefused(t *testing.T) {
	c := connect(t)
	ns, other := unique("granted"), unique("not-granted")
	createNamespace(t, c, ns)
	createNamespace(t, c, other)
	grant, err := access.Rules{{Repositories: []string{"acme/shop"}, Namespaces: []string{ns}}}.For("github", "acme/shop", c.Name)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := strings.Replace(configMapYAML("intruder", "x"), "metadata: {", "metadata: {namespace: "+other+", ", 1)
	_, err = fast().Apply(context.Background(), c, applier.Request{Project: "shop", Namespace: ns, Repository: owner, Scope: grant,
		Objects: objects(t, configMapYAML("settings", "a"), elsewhere)})
	if err == nil || !strings.Contains(err.Error(), "may not touch namespace "+other) {
		t.Fatalf("apply into a namespace the rules do not grant: %v", err)
	}
	if live(t, c, configMapsGVR, ns, "settings") != nil || live(t, c, configMapsGVR, other, "intruder") != nil {
		t.Error("a refused apply applied something")
	}
}

// A project whose render no longer has a Namespace and a CRD it applied: without
// allow_destructive, the apply deletes neither, nor anything they hold; with it, both go.
func TestDestructivePruneNeedsTheProjectsYes(t *testing.T) {
	c := connect(t)
	ns, legacy, group := unique("destructive"), unique("legacy"), unique("g")+".destructive.example.com"
	createNamespace(t, c, ns)
	crd := strings.ReplaceAll(gizmoCRD, "applier.example.com", group)
	gizmos := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "gizmos"}
	r := apply(t, c, applier.Request{Project: "shop", Namespace: ns, Repository: owner, Prune: true,
		Objects: objects(t, configMapYAML("settings", "a"), namespaceYAML(legacy), crd)})
	if r.Failed() {
		t.Fatalf("first apply:\n%s", describe(r))
	}
	// What the Namespace and the CRD hold, outside the inventory.
	for _, doc := range []struct {
		gvr       schema.GroupVersionResource
		namespace string
		yaml      string
	}{
		{configMapsGVR, legacy, configMapYAML("data", "precious")},
		{gizmos, ns, "apiVersion: " + group + "/v1\nkind: Gizmo\nmetadata: {name: g1}\nspec: {size: 1}\n"},
		{gizmos, legacy, "apiVersion: " + group + "/v1\nkind: Gizmo\nmetadata: {name: g2}\nspec: {size: 2}\n"},
	} {
		u := objects(t, doc.yaml)[0].Unstructured
		if _, err := c.Dynamic.Resource(doc.gvr).Namespace(doc.namespace).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	stillThere := func() {
		t.Helper()
		if u := live(t, c, namespacesGVR, "", legacy); u == nil || u.GetDeletionTimestamp() != nil {
			t.Errorf("namespace %s was deleted", legacy)
		}
		if live(t, c, crdGVR, "", "gizmos."+group) == nil {
			t.Error("the CRD was deleted")
		}
		if live(t, c, configMapsGVR, legacy, "data") == nil || live(t, c, gizmos, ns, "g1") == nil || live(t, c, gizmos, legacy, "g2") == nil {
			t.Error("what the namespace and the CRD hold was deleted")
		}
	}

	r = apply(t, c, applier.Request{Project: "shop", Namespace: ns, Repository: owner, Prune: true, Objects: objects(t, configMapYAML("settings", "a"))})
	for _, ref := range []string{"Namespace " + legacy, "CustomResourceDefinition gizmos." + group} {
		if !hasNote(r, ref+" is gone from the render but not deleted: deleting it takes down all it holds, and the project does not allow destructive changes (apply.allow_destructive)") {
			t.Errorf("no note that %s was kept:\n%s", ref, describe(r))
		}
	}
	if n := r.Counts().Pruned; n != 0 {
		t.Fatalf("%d objects pruned without allow_destructive\n%s", n, describe(r))
	}
	stillThere()
	// The inventory still tracks what it kept, so the yes can come later.
	if got := live(t, c, configMapsGVR, ns, inventory.ForProject("shop", ns).ParentName).GetAnnotations()[inventory.AnnotationGroupKinds]; !strings.Contains(got, "Namespace") || !strings.Contains(got, "CustomResourceDefinition") {
		t.Fatalf("the inventory stopped tracking the kept members: %q", got)
	}

	r = apply(t, c, applier.Request{Project: "shop", Namespace: ns, Repository: owner, Prune: true, AllowDestructive: true, Objects: objects(t, configMapYAML("settings", "a"))})
	expect(t, r, "Namespace "+legacy, outcome.Pruned)
	expect(t, r, "CustomResourceDefinition gizmos."+group, outcome.Pruned)
	// envtest runs no namespace controller: the namespace is left terminating, not gone.
	if u := live(t, c, namespacesGVR, "", legacy); u != nil && u.GetDeletionTimestamp() == nil {
		t.Error("namespace not being deleted after an allowed destructive prune")
	}
}
