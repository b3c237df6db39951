package planner

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/objdiff"
	"github.com/kubeplan/kubeplan/plan"
)

// deletions plans the removal of objects the inventory says this project applied before and
// that the render no longer has. Nothing outside the inventory is ever planned for deletion.
// Deleting a Namespace or a CRD takes more down with it: such a deletion is marked destructive
// and what it takes down is counted.
func (p *Planner) deletions(ctx context.Context, c *cluster.Client, req Request, objs []*desired) ([]plan.Change, []string, error) {
	members, skipped, err := req.Inventory.Members(ctx, c.Dynamic, c.Mapper, req.Repository)
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
		if req.Scope != nil {
			if err := req.Scope.Permits(ref); err != nil {
				return nil, nil, fmt.Errorf("cluster %s: the inventory lists %s: %w", c.Name, ref, err)
			}
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
		if plan.Destroys(ref) {
			ch.Destructive = true
			ch.Cascade = p.cascade(ctx, c, u)
		}
		if req.Inspect != nil {
			req.Inspect(&ch, nil, u)
		}
		out = append(out, ch)
	}
	return out, notes, nil
}
