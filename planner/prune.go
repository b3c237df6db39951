package planner

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/objdiff"
	"github.com/kubeplan/kubeplan/plan"
)

// deletions plans the removal of objects the inventory says this project applied before and
// that the render no longer has. Nothing outside the inventory is ever planned for deletion.
func (p *Planner) deletions(ctx context.Context, c *cluster.Client, inv inventory.Set, objs []*desired, inspect func(*plan.Change, *unstructured.Unstructured, *unstructured.Unstructured)) ([]plan.Change, []string, error) {
	members, skipped, err := inv.Members(ctx, c.Dynamic, c.Mapper)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	var notes []string
	if len(skipped) > 0 {
		notes = append(notes, fmt.Sprintf("inventory lists kinds the cluster no longer serves (%s): their objects cannot be pruned", strings.Join(skipped, ", ")))
	}
	rendered := map[string]bool{}
	for _, d := range objs {
		rendered[key(d.ref)] = true
	}
	var out []plan.Change
	for _, m := range members {
		u := m.Object
		ref := plan.ObjectRef{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
		if rendered[key(ref)] {
			continue
		}
		ch := plan.Change{Object: ref, Action: plan.Delete, Reason: "applied by kubeplan for this project before, gone from the render"}
		l, _ := objdiff.Pair(u, nil, nil)
		y, err := objdiff.YAML(l)
		if err != nil {
			return nil, nil, err
		}
		ch.Diff = objdiff.Unified("live/"+ref.String(), "/dev/null", y, "")
		if u.GetDeletionTimestamp() != nil {
			ch.Warnings = append(ch.Warnings, "already being deleted")
		}
		if inspect != nil {
			inspect(&ch, nil, u)
		}
		out = append(out, ch)
	}
	return out, notes, nil
}
