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
	// AnnotationRepository records the repository whose project the set is ("github:acme/shop",
	// forge and full path). The set's id stays derived from the parent's name and namespace
	// (KEP-3659); this annotation is what keeps another repository that declares the same
	// project name and namespace from planning or pruning the set.
	AnnotationRepository = "kubeplan.dev/repository"
	// ParentPrefix starts the name of every parent ConfigMap kubeplan writes. Manifests may not
	// use it: a rendered ConfigMap of that name could rewrite another project's inventory.
	ParentPrefix = "kubeplan-"
)

var configMapGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// Set identifies one project's ApplySet on one cluster.
type Set struct {
	// Parent is the ConfigMap that holds the set's bookkeeping.
	ParentName, ParentNamespace string
}

// ForProject names the parent of a project's ApplySet: ConfigMap kubeplan-<project> in ns.
func ForProject(project, namespace string) Set {
	return Set{ParentName: ParentPrefix + sanitize(project), ParentNamespace: namespace}
}

// ForeignError says that a set belongs to another repository than the one asking.
type ForeignError struct {
	Set
	// Owner is the repository the parent records; Repository the one that asked.
	Owner, Repository string
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("inventory configmap %s/%s belongs to repository %s, not to %s: kubeplan plans and applies an inventory only for the repository that owns it. "+
		"Give this project another name or namespace in .kubeplan.yaml", e.ParentNamespace, e.ParentName, e.Owner, e.Repository)
}

// Owner is the repository a parent records as its owner; "" when it records none (written by
// kubectl, or by kubeplan before it recorded owners).
func Owner(parent *unstructured.Unstructured) string {
	if parent == nil {
		return ""
	}
	return parent.GetAnnotations()[AnnotationRepository]
}

// CheckOwner refuses a parent that another repository owns. An empty repository (the CLI,
// which has none) and a parent that records no owner pass: the first apply by a repository
// records it as the owner.
func (s Set) CheckOwner(parent *unstructured.Unstructured, repository string) error {
	if owner := Owner(parent); repository != "" && owner != "" && owner != repository {
		return &ForeignError{Set: s, Owner: owner, Repository: repository}
	}
	return nil
}

// ReadParent reads the set's parent ConfigMap: nil when there is none yet, an error when the
// ConfigMap of that name is not this set's parent.
func (s Set) ReadParent(ctx context.Context, dyn dynamic.Interface) (*unstructured.Unstructured, error) {
	parent, err := dyn.Resource(configMapGVR).Namespace(s.ParentNamespace).Get(ctx, s.ParentName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory configmap %s/%s: %w", s.ParentNamespace, s.ParentName, err)
	}
	if parent.GetLabels()[LabelID] != s.ID() {
		return nil, fmt.Errorf("configmap %s/%s is not the ApplySet parent kubeplan expects (label %s is %q, want %q)",
			s.ParentNamespace, s.ParentName, LabelID, parent.GetLabels()[LabelID], s.ID())
	}
	return parent, nil
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
// apply); a set another repository owns is refused (*ForeignError) before any member is read.
// Group-kinds the cluster no longer serves are reported in skipped, not guessed at.
func (s Set) Members(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, repository string) (members []Member, skipped []string, err error) {
	parent, err := s.ReadParent(ctx, dyn)
	if err != nil || parent == nil {
		return nil, nil, err
	}
	if err := s.CheckOwner(parent, repository); err != nil {
		return nil, nil, err
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

// Parent builds the parent ConfigMap recording the given group-kinds and namespaces, and the
// owning repository unless that is empty, as the apply that makes the set current writes it.
func (s Set) Parent(groupKinds []schema.GroupKind, namespaces []string, repository string) *unstructured.Unstructured {
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
	ann := map[string]string{
		AnnotationTooling:        Tooling,
		AnnotationGroupKinds:     joinList(gks),
		AnnotationAdditionalNSes: joinList(extra),
	}
	if repository != "" {
		ann[AnnotationRepository] = repository
	}
	u.SetAnnotations(ann)
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

// Reserved reports whether a rendered object would take the place of an inventory parent: a
// ConfigMap whose name starts with ParentPrefix. Applying one could rewrite (or forge) another
// project's inventory and its owner, so kubeplan refuses to plan or apply it.
func Reserved(group, kind, name string) bool {
	return group == "" && kind == "ConfigMap" && strings.HasPrefix(name, ParentPrefix)
}

// ReservedReason says why a reserved object is refused.
const ReservedReason = "ConfigMap names starting with " + ParentPrefix + " are reserved for kubeplan's inventories: rename it"
