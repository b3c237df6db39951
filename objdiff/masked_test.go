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

func secret(data map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "db"}, "data": data,
	}}
}

// A diff of a Secret never tells whether a value the change sets equals the live one: a
// right guess and a wrong one read the same, and neither reads "unchanged".
func TestPairNeverComparesSecretValues(t *testing.T) {
	live := secret(map[string]any{"password": "aHVudGVyMg==", "user": "YWRtaW4="}) // hunter2, admin
	diff := func(planned *unstructured.Unstructured, set []string) string {
		l, p := objdiff.Pair(live, planned, set)
		ly, err := objdiff.YAML(l)
		if err != nil {
			t.Fatal(err)
		}
		py, err := objdiff.YAML(p)
		if err != nil {
			t.Fatal(err)
		}
		return objdiff.Unified("live", "planned", ly, py)
	}
	right := diff(secret(map[string]any{"password": "aHVudGVyMg==", "user": "YWRtaW4="}), []string{"password"})
	wrong := diff(secret(map[string]any{"password": "d3Jvbmc=", "user": "YWRtaW4="}), []string{"password"})
	if right != wrong {
		t.Errorf("a right guess and a wrong one diff differently:\n%s\n%s", right, wrong)
	}
	if !strings.Contains(right, "-  password: (hidden)\n+  password: (hidden, set by this change)\n") || !strings.Contains(right, "\n   user: (hidden)\n") {
		t.Errorf("diff does not say which key the change sets:\n%s", right)
	}
	for _, leak := range []string{"aHVudGVyMg==", "d3Jvbmc=", "changed"} {
		if strings.Contains(right+wrong, leak) {
			t.Errorf("diff holds %q:\n%s", leak, right)
		}
	}
	if got := objdiff.WrittenSecretKeys(live, secret(map[string]any{"password": "aHVudGVyMg==", "token": "eA=="}), []string{"password", "token"}); strings.Join(got, ",") != "password,token,user" {
		t.Errorf("written keys %q, want password,token,user (set, added, removed)", got)
	}
}

// A refusal that quotes a Secret's values (an admission policy's message, a webhook's) reads
// "(hidden)" in their place, written or base64-encoded; other objects' text stays, and so do
// values under four characters, which would take ordinary words and numbers with them.
func TestScrubSecretValuesFromMessages(t *testing.T) {
	live := secret(map[string]any{"password": "aHVudGVyMg=="}) // hunter2
	planned := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"stringData": map[string]any{"password": "hunter2-and-more", "pin": "42"}}}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"k": "denied"}}}
	msg := `admission webhook "v.example.com" denied the request: password hunter2-and-more (was hunter2, aHVudGVyMg==), pin 42`
	got := objdiff.ScrubSecretValues(msg, planned, live, cm)
	want := `admission webhook "v.example.com" denied the request: password (hidden) (was (hidden), (hidden)), pin 42`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
