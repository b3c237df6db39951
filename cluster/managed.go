package cluster

import (
	"bytes"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// ManagedSet is one managedFields entry of an object with the fields it owns.
type ManagedSet struct {
	Manager     string
	Operation   string // "Apply" or "Update"
	Subresource string
	APIVersion  string     // the version the fields are named in
	Time        *time.Time // UTC; nil when the entry has none
	Set         *fieldpath.Set
}

// ManagedSets reads an object's managedFields into field sets, in the object's order.
func ManagedSets(u *unstructured.Unstructured) ([]ManagedSet, error) {
	var out []ManagedSet
	for _, mf := range u.GetManagedFields() {
		e := ManagedSet{Manager: mf.Manager, Operation: string(mf.Operation), Subresource: mf.Subresource, APIVersion: mf.APIVersion, Set: &fieldpath.Set{}}
		if mf.Time != nil {
			t := mf.Time.UTC()
			e.Time = &t
		}
		if mf.FieldsV1 != nil {
			if err := e.Set.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil {
				return nil, fmt.Errorf("managedFields of field manager %q: %w", mf.Manager, err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}
