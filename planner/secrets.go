package planner

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/kubeplan/kubeplan/cluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A plan never tells whether a value a change sets on a Secret equals the live one: anyone who
// can open a pull request could otherwise write a Secret with a guessed value and read from
// the plan whether the guess is right. Not only the diff would tell: the apiserver answers a
// dry-run differently for an equal value (no field-manager conflict, no "field is immutable"
// on an immutable Secret, another verdict from an admission policy that compares old and new
// values). So the dry-run of a Secret that exists is sent with the live value in place of the
// change's for every key both have, and what the real value might cause is said from what
// the plan knows without comparing: who else manages the key, and whether the Secret is
// immutable. The objects applied keep the change's values.

// blindSecret returns a copy of desired in which every key the live Secret also has carries
// the live value (in data; stringData is dropped for it). Keys the live Secret lacks keep the
// change's value: there is nothing to compare them with.
func blindSecret(desired, live *unstructured.Unstructured) *unstructured.Unstructured {
	liveData, _, _ := unstructured.NestedMap(live.Object, "data")
	if len(liveData) == 0 {
		return desired
	}
	out := desired.DeepCopy()
	data, _ := out.Object["data"].(map[string]any)
	stringData, _ := out.Object["stringData"].(map[string]any)
	for k, v := range liveData {
		_, inData := data[k]
		_, inStringData := stringData[k]
		if !inData && !inStringData {
			continue
		}
		if data == nil {
			data = map[string]any{}
			out.Object["data"] = data
		}
		data[k] = v
		delete(stringData, k)
	}
	if stringData != nil && len(stringData) == 0 {
		delete(out.Object, "stringData")
	}
	return out
}

// valueTakeovers says, for each key the change sets that the live Secret has, which other
// field managers manage it. An apply without force fails on such a key exactly when the value
// differs; as values are not compared, the plan reports each as a possible takeover (and the
// change as conflicting), equal or not.
func valueTakeovers(live *unstructured.Unstructured, set []string) []string {
	liveData, _, _ := unstructured.NestedMap(live.Object, "data")
	var out []string
	for _, entry := range live.GetManagedFields() {
		if entry.Manager == cluster.FieldManager && entry.Operation == metav1.ManagedFieldsOperationApply {
			continue
		}
		if entry.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(entry.FieldsV1.Raw, &fields); err != nil {
			continue // not a field set this version of kubeplan can read: nothing to report
		}
		for _, k := range set {
			if _, ok := liveData[k]; !ok {
				continue
			}
			if owns(fields, "f:data", "f:"+k) || owns(fields, "f:stringData", "f:"+k) {
				out = append(out, fmt.Sprintf("may take over .data.%s from field manager %q: Secret values are not compared, so apply.force is needed whether or not the value differs", k, entry.Manager))
			}
		}
	}
	sort.Strings(out)
	return out
}

// owns reports whether a managed-fields set (fieldsV1) holds the field at path.
func owns(fields map[string]any, path ...string) bool {
	for _, p := range path {
		next, ok := fields[p].(map[string]any)
		if !ok {
			return false
		}
		fields = next
	}
	return true
}

// immutableWarning is the plan's word on setting keys of an immutable Secret: the apply
// fails if any value differs from the live one, which the plan does not compare.
func immutableWarning(live *unstructured.Unstructured, set []string) string {
	if immutable, _, _ := unstructured.NestedBool(live.Object, "immutable"); !immutable {
		return ""
	}
	liveData, _, _ := unstructured.NestedMap(live.Object, "data")
	for _, k := range set {
		if _, ok := liveData[k]; ok {
			return "immutable Secret: the apply fails if a value set here differs from the live one (Secret values are not compared)"
		}
	}
	return ""
}
