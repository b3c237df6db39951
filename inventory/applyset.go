// Package inventory records which objects kubeplan applied for a project on a cluster, using
// the Kubernetes ApplySet convention (KEP-3659) so that kubectl understands it: a parent
// ConfigMap per project per cluster, and a part-of label on every member object.
package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// The KEP-3659 labels and annotations.
const (
	LabelPartOf              = "applyset.kubernetes.io/part-of"
	LabelID                  = "applyset.kubernetes.io/id"
	AnnotationTooling        = "applyset.kubernetes.io/tooling"
	AnnotationGroupKinds     = "applyset.kubernetes.io/contains-group-kinds"
	AnnotationAdditionalNSes = "applyset.kubernetes.io/additional-namespaces"
	// Tooling is what kubeplan writes in the tooling annotation.
	Tooling = "kubeplan/v1"
)

var configMapGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// Set identifies one project's ApplySet on one cluster.
type Set struct {
	// Parent is the ConfigMap that holds the set's bookkeeping.
	ParentName, ParentNamespace string
}

// ForProject names the parent of a project's ApplySet: ConfigMap kubeplan-<project> in ns.
func ForProject(project, namespace string) Set {
	return Set{ParentName: "kubeplan-" + sanitize(project), ParentNamespace: namespace}
}

// ID is the ApplySet id derived from the parent as KEP-3659 specifies (and kubectl computes):
// base64url(sha256(name.namespace.kind.group)) framed as applyset-<hash>-v1.
func (s Set) ID() string {
	sum := sha256.Sum256([]byte(strings.Join([]string{s.ParentName, s.ParentNamespace, "ConfigMap", ""}, ".")))
	return fmt.Sprintf("applyset-%s-v1", base64.RawURLEncoding.EncodeToString(sum[:]))
}

// Label marks obj as a member of the set, as apply will.
func (s Set) Label(obj *unstructured.Unstructured) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelPartOf] = s.ID()
	obj.SetLabels(labels)
}

// Member is an object the set's labels say kubeplan applied before.
type Member struct {
	Mapping *meta.RESTMapping
	Object  *unstructured.Unstructured
}

// Members lists the live members of the set: objects labelled part-of the set's id, in the
// group-kinds and namespaces the parent records. A set with no parent has no members (first
// apply). Group-kinds the cluster no longer serves are reported in skipped, not guessed at.
func (s Set) Members(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper) (members []Member, skipped []string, err error) {
	parent, err := dyn.Resource(configMapGVR).Namespace(s.ParentNamespace).Get(ctx, s.ParentName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read inventory configmap %s/%s: %w", s.ParentNamespace, s.ParentName, err)
	}
	if parent.GetLabels()[LabelID] != s.ID() {
		return nil, nil, fmt.Errorf("configmap %s/%s is not the ApplySet parent kubeplan expects (label %s is %q, want %q)",
			s.ParentNamespace, s.ParentName, LabelID, parent.GetLabels()[LabelID], s.ID())
	}
	groupKinds, extra := Recorded(parent)
	namespaces := append([]string{s.ParentNamespace}, extra...)
	selector := LabelPartOf + "=" + s.ID()
	for _, gkText := range groupKinds {
		gk := schema.ParseGroupKind(gkText)
		mapping, err := mapper.RESTMapping(gk)
		if err != nil {
			skipped = append(skipped, gkText)
			continue
		}
		scopes := namespaces
		if mapping.Scope.Name() == meta.RESTScopeNameRoot {
			scopes = []string{""}
		}
		for _, ns := range scopes {
			list, err := dyn.Resource(mapping.Resource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return nil, nil, fmt.Errorf("list inventory members %s in namespace %q: %w", gkText, ns, err)
			}
			for i := range list.Items {
				members = append(members, Member{Mapping: mapping, Object: &list.Items[i]})
			}
		}
	}
	return members, skipped, nil
}

// Recorded reads the group-kinds ("Deployment.apps") and additional namespaces a parent's
// annotations record.
func Recorded(parent *unstructured.Unstructured) (groupKinds, namespaces []string) {
	ann := parent.GetAnnotations()
	return splitList(ann[AnnotationGroupKinds]), splitList(ann[AnnotationAdditionalNSes])
}

// Parent builds the parent ConfigMap recording the given group-kinds and namespaces, as the
// apply that makes the set current will write it.
func (s Set) Parent(groupKinds []schema.GroupKind, namespaces []string) *unstructured.Unstructured {
	var gks []string
	for _, gk := range groupKinds {
		gks = append(gks, gk.String())
	}
	var extra []string
	for _, ns := range namespaces {
		if ns != "" && ns != s.ParentNamespace {
			extra = append(extra, ns)
		}
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetName(s.ParentName)
	u.SetNamespace(s.ParentNamespace)
	u.SetLabels(map[string]string{LabelID: s.ID()})
	u.SetAnnotations(map[string]string{
		AnnotationTooling:        Tooling,
		AnnotationGroupKinds:     joinList(gks),
		AnnotationAdditionalNSes: joinList(extra),
	})
	return u
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinList(items []string) string {
	seen := map[string]bool{}
	var out []string
	for _, i := range items {
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// sanitize makes a project name usable in an object name (DNS-1123 subdomain).
func sanitize(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-.")
}
