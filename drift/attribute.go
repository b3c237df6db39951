package drift

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"

	"github.com/kubeplan/kubeplan/cluster"
)

// attribute finds the fields where live differs from planned (the live object with git's
// manifest applied in a dry-run as manager) and who owns each now. The fields git sets are
// exactly what manager owns in planned; what manager owns in live it applied before.
func attribute(manager string, planned, live *unstructured.Unstructured) ([]Field, error) {
	plannedEntries, err := cluster.ManagedSets(planned)
	if err != nil {
		return nil, fmt.Errorf("planned: %w", err)
	}
	liveEntries, err := cluster.ManagedSets(live)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	want, ours := &fieldpath.Set{}, &fieldpath.Set{}
	for _, e := range plannedEntries {
		if e.Manager == manager {
			want = want.Union(e.Set)
		}
	}
	for _, e := range liveEntries {
		if e.Manager == manager {
			ours = ours.Union(e.Set)
		}
	}

	secret := planned.GetAPIVersion() == "v1" && planned.GetKind() == "Secret"
	var out []Field
	for set := range want.Leaves().All() {
		p := set
		if secret {
			p = secretData(set)
		}
		pv, inPlanned := valueAt(planned.Object, p)
		lv, inLive := valueAt(live.Object, p)
		if inPlanned == inLive && reflect.DeepEqual(pv, lv) {
			continue
		}
		f := Field{Path: p.String()}
		for _, e := range liveEntries {
			if e.Manager != manager && e.Set.Has(p) {
				f.Owners = append(f.Owners, Owner{Manager: e.Manager, Operation: e.Operation, Subresource: e.Subresource, Time: e.Time})
			}
		}
		switch {
		case len(f.Owners) > 0:
			f.Cause = Taken
		case ours.Has(set) || ours.Has(p):
			f.Cause = Git
		case !inLive:
			f.Cause = Removed
		default:
			f.Cause = Unknown
		}
		out = append(out, f)
	}
	// Fields kubeplan applied before and git no longer sets: the apply removes them.
	for p := range ours.Leaves().All() {
		if want.Has(p) {
			continue
		}
		_, inPlanned := valueAt(planned.Object, p)
		if _, inLive := valueAt(live.Object, p); inLive && !inPlanned {
			out = append(out, Field{Path: p.String(), Cause: Git})
		}
	}
	return out, nil
}

// secretData turns .stringData.KEY into .data.KEY: the apiserver stores stringData (write
// only) in data, where the live value is and where whoever changes it by hand writes.
func secretData(p fieldpath.Path) fieldpath.Path {
	if len(p) == 2 && p[0].FieldName != nil && *p[0].FieldName == "stringData" {
		return fieldpath.Path{fieldpath.FieldNameElement("data"), p[1]}
	}
	return p
}

// valueAt follows a field path into an unstructured object.
func valueAt(obj any, p fieldpath.Path) (any, bool) {
	cur := obj
	for _, pe := range p {
		switch {
		case pe.FieldName != nil:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[*pe.FieldName]; !ok {
				return nil, false
			}
		case pe.Index != nil:
			l, ok := cur.([]any)
			if !ok || *pe.Index < 0 || *pe.Index >= len(l) {
				return nil, false
			}
			cur = l[*pe.Index]
		case pe.Key != nil:
			l, ok := cur.([]any)
			if !ok {
				return nil, false
			}
			found := false
			for _, item := range l {
				if m, ok := item.(map[string]any); ok && keyMatches(m, *pe.Key) {
					cur, found = item, true
					break
				}
			}
			if !found {
				return nil, false
			}
		case pe.Value != nil:
			l, ok := cur.([]any)
			if !ok {
				return nil, false
			}
			found := false
			for _, item := range l {
				if value.Equals(value.NewValueInterface(item), *pe.Value) {
					cur, found = item, true
					break
				}
			}
			if !found {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return cur, true
}

// keyMatches reports whether a list item has every key field of an associative list key.
func keyMatches(item map[string]any, key value.FieldList) bool {
	for _, k := range key {
		v, ok := item[k.Name]
		if !ok || !value.Equals(value.NewValueInterface(v), k.Value) {
			return false
		}
	}
	return true
}
