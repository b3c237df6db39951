package planner

import (
	"context"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/objdiff"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/resolve"
)

// deletions plans the removal of the inventory members gone from the render, as the applier's
// prune computes them (resolve.Rule.Gone): nothing outside the inventory is ever planned for
// deletion. Deleting a Namespace or a CRD takes more down with it: such a deletion is marked
// destructive and what it takes down is counted.
func (p *Planner) deletions(ctx context.Context, c *cluster.Client, req Request, objs []*desired) ([]plan.Change, []string, error) {
	gone, skipped, err := rule(c, req).Gone(ctx, c.Dynamic, req.Repository, req.Scope, resolved(objs))
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	if n := resolve.SkippedNote(skipped); n != "" {
		notes = append(notes, n)
	}
	var out []plan.Change
	for _, m := range gone {
		u, ref := m.Object, resolve.MemberRef(m)
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
