package manifest

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// Object is one rendered object and where it came from.
type Object struct {
	*unstructured.Unstructured
	// Source names the file (and document) the object came from, relative to the repository root.
	Source string
}
