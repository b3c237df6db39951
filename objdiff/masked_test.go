package objdiff_test

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/objdiff"
)

func TestMaskedHidesSecretValuesOnly(t *testing.T) {
	secret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "db"},
		"data":       map[string]any{"password": "czNjcjN0LXB3"}, // s3cr3t-pw
		"stringData": map[string]any{"token": "tok-123456"},
	}}
	masked := objdiff.Masked(secret)
	out, err := json.Marshal(masked.Object)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"czNjcjN0LXB3", "s3cr3t-pw", "tok-123456"} {
		if strings.Contains(string(out), leak) {
			t.Errorf("masked Secret still holds %q: %s", leak, out)
		}
	}
	if !strings.Contains(string(out), `"password":"(hidden)"`) || !strings.Contains(string(out), `"token":"(hidden)"`) {
		t.Errorf("masked Secret lost its keys: %s", out)
	}
	if v, _, _ := unstructured.NestedString(secret.Object, "data", "password"); v != "czNjcjN0LXB3" {
		t.Error("Masked changed the object it was given")
	}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"a": "b"}}}
	if objdiff.Masked(cm) != cm {
		t.Error("a ConfigMap was copied or changed")
	}
}
