package cluster

import (
	"errors"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NamespaceNotFound reports whether the apiserver refused a request because namespace ns
// does not exist (as opposed to the object itself not existing).
func NamespaceNotFound(err error, ns string) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || !apierrors.IsNotFound(err) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Kind == "namespaces" && d.Name == ns
}

// FieldConflict is one field a server-side apply would take from another field manager.
type FieldConflict struct {
	Field   string // ".spec.replicas"
	Manager string // quoted: `"hpa-controller"`
}

// Conflicts reads the field-manager conflicts out of a server-side apply's 409 answer; none
// when err is not one or names no fields.
func Conflicts(err error) []FieldConflict {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return nil
	}
	var out []FieldConflict
	for _, cause := range status.Status().Details.Causes {
		if cause.Type == metav1.CauseTypeFieldManagerConflict {
			out = append(out, FieldConflict{Field: cause.Field, Manager: managerName(cause.Message)})
		}
	}
	return out
}

// managerName pulls the quoted manager out of `conflict with "hpa-controller" using apps/v1`.
func managerName(msg string) string {
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		if j := strings.IndexByte(msg[i+1:], '"'); j >= 0 {
			return msg[i : i+j+2]
		}
	}
	return msg
}

// DescribeRejection words an apiserver's refusal of a write to one object: what kind of
// refusal, then the apiserver's own message; otherwise prefixes refusals of no known kind.
func DescribeRejection(err error, otherwise string) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "admission webhook") || strings.Contains(msg, "denied the request") || strings.Contains(msg, "ValidatingAdmissionPolicy"):
		return "rejected by admission: " + msg
	case apierrors.IsInvalid(err):
		return "invalid: " + msg
	case apierrors.IsForbidden(err):
		return "forbidden: " + msg
	}
	return otherwise + ": " + msg
}
