package comments_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/internal/golden"
	"github.com/kubeplan/kubeplan/outcome"
	"github.com/kubeplan/kubeplan/plan"
)

func ref(kind, ns, name string) plan.ObjectRef {
	return plan.ObjectRef{APIVersion: "v1", Kind: kind, Namespace: ns, Name: name}
}

func TestApplyResultCommentsGolden(t *testing.T) {
	cases := []struct {
		name string
		in   comments.Apply
	}{
		{"apply-success.md", comments.Apply{Project: "web", Cluster: "staging", SHA: "0123456789abcdef0123", Actor: "dave", Result: &outcome.Result{Objects: []outcome.Object{
			{Object: ref("Namespace", "", "web"), Action: outcome.Unchanged, Health: "Current"},
			{Object: ref("ConfigMap", "web", "settings"), Action: outcome.Configured, Health: "Current", HealthMessage: "Resource is always ready"},
			{Object: plan.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "web"}, Action: outcome.Created, Health: "Current"},
			{Object: ref("Service", "web", "old"), Action: outcome.Pruned},
		}}}},
		{"apply-failed.md", comments.Apply{Project: "web", Cluster: "prod", SHA: "0123456789abcdef0123", Actor: "carol", OnMerge: true,
			Notes: []string{"kubeplan stopped during an earlier apply of this project: it planned again and applied what is left."},
			Result: &outcome.Result{HealthTimedOut: true, Notes: []string{"prune skipped: 1 object failed to apply"}, Objects: []outcome.Object{
				{Object: ref("Service", "web", "web"), Action: outcome.Failed, Error: "Service \"web\" is invalid: spec.clusterIP: Invalid value: \"10.0.0.9\": field is immutable"},
				{Object: plan.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "web"}, Action: outcome.Configured, Health: "InProgress", HealthMessage: "Available: 1/2"},
			}}}},
		{"apply-error.md", comments.Apply{Project: "web", Cluster: "gone", SHA: "0123456789abcdef0123", Actor: "dave", Err: "cluster gone: apiserver https://127.0.0.1:1 is unreachable (connection refused)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { golden.Assert(t, c.name, comments.RenderApply(c.in)) })
	}
}

// A roll-out of thousands of objects fits in the forge's limit and says how many rows it left out.
func TestApplyResultCommentFitsTheLimit(t *testing.T) {
	var objs []outcome.Object
	for i := 0; i < 5000; i++ {
		objs = append(objs, outcome.Object{Object: ref("ConfigMap", "web", fmt.Sprintf("config-%04d", i)), Action: outcome.Created, Health: "Current"})
	}
	body := comments.RenderApply(comments.Apply{Project: "web", Cluster: "prod", SHA: "abc", Result: &outcome.Result{Objects: objs}, Limit: 20000})
	if len(body) > 20000 {
		t.Fatalf("comment is %d characters, over the limit of 20000", len(body))
	}
	shown := strings.Count(body, "| created |")
	if !strings.Contains(body, fmt.Sprintf("✂ %d more objects do not fit", 5000-shown)) || !strings.Contains(body, "**5000 created**") {
		t.Fatalf("cut comment does not account for every object (%d rows shown):\n%s", shown, body[len(body)-300:])
	}
	if err := comments.CheckMarkdown(body); err != nil {
		t.Fatal(err)
	}
}
