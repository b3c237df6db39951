package planner

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/plan"
)

// cascadeListLimit caps each list that counts what a destructive deletion takes down: the
// count is for a reviewer's eyes, and a namespace of a million objects must not stall the
// plan. Where the apiserver says how many remain, the count is still exact.
const cascadeListLimit = 500

// cascade counts what deleting u, a Namespace or a CustomResourceDefinition, takes down with
// it: every object in the namespace by kind, or every custom resource of the CRD in every
// namespace. Only object metadata is listed. What cannot be counted makes the count a lower
// bound; it never fails the plan.
func (p *Planner) cascade(ctx context.Context, c *cluster.Client, u *unstructured.Unstructured) *plan.Cascade {
	// Listing every resource lists deprecated ones too (v1 Endpoints): their warnings would
	// only fill the log.
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = rest.NoWarnings{}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil
	}
	if u.GetKind() == "Namespace" {
		return p.namespaceCascade(ctx, cfg, md, u.GetName())
	}
	return crdCascade(ctx, md, u)
}

// namespaceCascade counts the objects in a namespace, one list per namespaced resource the
// cluster serves (its preferred version). Events are left out: they are noise, not workloads.
func (p *Planner) namespaceCascade(ctx context.Context, cfg *rest.Config, md metadata.Interface, ns string) *plan.Cascade {
	out := &plan.Cascade{}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil
	}
	lists, err := disco.ServerPreferredNamespacedResources()
	if err != nil {
		if !discovery.IsGroupDiscoveryFailedError(err) {
			return nil
		}
		// Some API groups did not answer: count the others, and say the count is partial.
		var failed *discovery.ErrGroupDiscoveryFailed
		if errors.As(err, &failed) {
			for gv := range failed.Groups {
				out.Uncounted = append(out.Uncounted, gv.String())
			}
		}
	}
	type resource struct {
		gvr  schema.GroupVersionResource
		kind string
	}
	var resources []resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || r.Name == "events" || !hasVerbs(r.Verbs, "list", "delete") {
				continue
			}
			kind := r.Kind
			if gv.Group != "" {
				kind += "." + gv.Group
			}
			resources = append(resources, resource{gv.WithResource(r.Name), kind})
		}
	}
	var mu sync.Mutex
	counts := map[string]int{}
	var g errgroup.Group
	g.SetLimit(min(p.opts.Workers, 8))
	for _, r := range resources {
		g.Go(func() error {
			n, atLeast, err := count(ctx, md.Resource(r.gvr).Namespace(ns))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				out.Uncounted = append(out.Uncounted, r.kind)
			case n > 0:
				counts[r.kind] = n
			}
			out.AtLeast = out.AtLeast || atLeast
			return nil
		})
	}
	_ = g.Wait() // count reports its errors in Uncounted
	return finish(out, counts)
}

// crdCascade counts the custom resources of a CRD in every namespace.
func crdCascade(ctx context.Context, md metadata.Interface, crd *unstructured.Unstructured) *plan.Cascade {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	version := ""
	for _, v := range versions {
		m, _ := v.(map[string]any)
		name, _ := m["name"].(string)
		if served, _ := m["served"].(bool); served && (version == "" || m["storage"] == true) {
			version = name
		}
	}
	if plural == "" || version == "" {
		return nil
	}
	out := &plan.Cascade{}
	n, atLeast, err := count(ctx, md.Resource(schema.GroupVersionResource{Group: group, Version: version, Resource: plural}))
	if err != nil {
		out.Uncounted = []string{kind + "." + group}
		return finish(out, nil)
	}
	out.AtLeast = atLeast
	return finish(out, map[string]int{kind + "." + group: n})
}

// count lists one resource (capped) and counts its objects; atLeast is true when the list was
// cut and the apiserver did not say how many remain. A resource that is gone counts zero.
func count(ctx context.Context, res metadata.ResourceInterface) (n int, atLeast bool, err error) {
	list, err := res.List(ctx, metav1.ListOptions{Limit: cascadeListLimit})
	if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	n = len(list.Items)
	if rest := list.GetRemainingItemCount(); rest != nil {
		return n + int(*rest), false, nil
	}
	return n, list.GetContinue() != "", nil
}

// finish sorts the counts into the cascade: largest first, then by kind.
func finish(out *plan.Cascade, counts map[string]int) *plan.Cascade {
	for kind, n := range counts {
		if n > 0 {
			out.Kinds = append(out.Kinds, plan.KindCount{Kind: kind, Count: n})
			out.Total += n
		}
	}
	sort.Slice(out.Kinds, func(i, j int) bool {
		if out.Kinds[i].Count != out.Kinds[j].Count {
			return out.Kinds[i].Count > out.Kinds[j].Count
		}
		return out.Kinds[i].Kind < out.Kinds[j].Kind
	})
	sort.Strings(out.Uncounted)
	if len(out.Uncounted) > 0 {
		out.AtLeast = true
	}
	return out
}

func hasVerbs(verbs metav1.Verbs, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(verbs, w) {
			return false
		}
	}
	return true
}
