package drift

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
)

// Planner plans a project on a cluster; *planner.Planner is one (serve's, with its dry-run
// cache, sends no dry-run for objects unchanged since the last check).
type Planner interface {
	Plan(ctx context.Context, c *cluster.Client, req planner.Request) (*plan.Plan, error)
}

// Check plans req (git's objects for one project) against the cluster and reports what
// drifted. It costs what the plan costs and nothing more: the field managers come from the
// live objects the plan reads anyway and from the dry-runs' answers. A caller's req.Inspect
// still sees every change.
func Check(ctx context.Context, p Planner, c *cluster.Client, req planner.Request, s Settings) (*Report, error) {
	if s.Mode == "" {
		s.Mode = Notify
	}
	if _, err := ParseMode(string(s.Mode)); err != nil {
		return nil, fmt.Errorf("project %s: %w", req.Project, err)
	}
	// Modes are read before anything is asked of the cluster: a typo fails fast.
	modes := make([]Mode, len(req.Objects))
	for i, o := range req.Objects {
		modes[i] = s.Mode
		if a, ok := o.Unstructured.GetAnnotations()[Annotation]; ok {
			m, err := ParseMode(a)
			if err != nil {
				return nil, fmt.Errorf("%s %s (from %s): annotation %s: %w", o.Unstructured.GetKind(), o.Unstructured.GetName(), o.Source, Annotation, err)
			}
			modes[i] = m
		}
	}

	var (
		mu        sync.Mutex
		fields    = map[string][]Field{}
		liveModes = map[string]Mode{}
		errs      []error
	)
	inner := req.Inspect
	req.Inspect = func(ch *plan.Change, planned, live *unstructured.Unstructured) {
		if inner != nil {
			inner(ch, planned, live)
		}
		switch {
		case ch.Action == plan.Update && planned != nil && live != nil:
			fs, err := attribute(cluster.FieldManager, planned, live)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ch.Object, err))
			}
			fields[key(ch.Object)] = fs
		case ch.Action == plan.Delete && live != nil:
			// Gone from git: the mode it had in git when applied is on the live object.
			if m, err := ParseMode(live.GetAnnotations()[Annotation]); err == nil {
				mu.Lock()
				defer mu.Unlock()
				liveModes[key(ch.Object)] = m
			}
		}
	}
	pl, err := p.Plan(ctx, c, req)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cluster %s: read managedFields: %w", c.Name, err)
	}

	// The planner defaulted namespaces in place: the objects now name what the plan names.
	modeOf := liveModes
	for i, o := range req.Objects {
		u := o.Unstructured
		modeOf[key(plan.ObjectRef{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()})] = modes[i]
	}
	rules := compile(s)
	r := &Report{Project: pl.Project, Cluster: pl.Cluster, Notes: pl.Notes, Checked: len(req.Objects)}
	for _, ch := range pl.Changes {
		if ch.Action == plan.Unchanged {
			continue
		}
		mode, ok := modeOf[key(ch.Object)]
		if !ok {
			mode = s.Mode
		}
		if mode == Ignore {
			r.Ignored = append(r.Ignored, ch.Object)
			continue
		}
		o := Object{Object: ch.Object, Mode: mode, Source: ch.Source, Diff: ch.Diff, SecretKeys: ch.SecretKeys}
		switch ch.Action {
		case plan.Fail:
			r.Failed = append(r.Failed, Failure{Object: ch.Object, Source: ch.Source, Reason: ch.Reason})
			continue
		case plan.Create:
			o.State = Missing
		case plan.Delete:
			o.State = Extra
		default:
			o.State = Changed
			for _, f := range fields[key(ch.Object)] {
				f.ByDesign = byDesign(rules, ch.Object.Kind, f)
				o.Fields = append(o.Fields, f)
			}
		}
		r.Objects = append(r.Objects, o)
	}
	return r, nil
}

func key(r plan.ObjectRef) string {
	return r.Group() + "|" + r.Kind + "|" + r.Namespace + "|" + r.Name
}
