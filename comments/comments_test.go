package comments

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/internal/golden"
	"github.com/kubeplan/kubeplan/plan"
)

func samplePlan(cluster, project string, objects int, diffLines int) *plan.Plan {
	p := &plan.Plan{Project: project, Cluster: cluster}
	for i := 0; i < objects; i++ {
		var d strings.Builder
		fmt.Fprintf(&d, "--- live/ConfigMap %s/cm-%03d\n+++ planned/ConfigMap %s/cm-%03d\n@@ -1,%d +1,%d @@\n", project, i, project, i, diffLines, diffLines)
		for l := 0; l < diffLines; l++ {
			fmt.Fprintf(&d, "-  key%04d: old-value-%d\n+  key%04d: new-value-%d\n", l, l, l, l)
		}
		p.Changes = append(p.Changes, plan.Change{
			Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: project, Name: fmt.Sprintf("cm-%03d", i)},
			Action: plan.Update, Diff: d.String(),
		})
	}
	p.Changes = append(p.Changes, plan.Change{Object: plan.ObjectRef{APIVersion: "v1", Kind: "Service", Namespace: "prod", Name: "old"},
		Action: plan.Delete, Reason: "applied by kubeplan for this project before, gone from the render", Diff: "--- live/Service prod/old\n+++ /dev/null\n@@ -1 +0,0 @@\n-kind: Service\n"})
	return p
}

var commands = []string{"`/plan [-p PROJECT]` plans again", "`/apply [-p PROJECT]` applies", "`/help` lists commands"}

func TestCommentGolden(t *testing.T) {
	bodies := Render(Input{
		HeadSHA: "0123456789abcdef0123456789abcdef01234567",
		Targets: []Target{
			{Project: "web", Cluster: "prod-eu", Plan: samplePlan("prod-eu", "web", 2, 1)},
			{Project: "api", Cluster: "prod-us", Err: "render apps/api: apps/api/deploy.yaml: document 2: yaml: line 3: did not find expected key"},
		},
		Commands: commands,
	})
	if len(bodies) != 1 {
		t.Fatalf("%d parts, want 1", len(bodies))
	}
	checkMarkdown(t, bodies[0])
	golden.Assert(t, "comment.md", bodies[0])
}

// A plan far over the forge's limit is split at object boundaries into parts that each fit,
// are valid Markdown, are numbered, and together hold every object exactly once.
func TestHugePlanIsSplitIntoValidParts(t *testing.T) {
	const limit = 6000
	p := samplePlan("prod-eu", "web", 40, 8)
	bodies := Render(Input{HeadSHA: "abc", Targets: []Target{{Project: "web", Cluster: "prod-eu", Plan: p}, {Project: "api", Cluster: "prod-eu", Plan: samplePlan("prod-eu", "api", 3, 2)}}, Commands: commands, Limit: limit})
	if len(bodies) < 5 {
		t.Fatalf("only %d parts for a plan many times the limit", len(bodies))
	}
	all := strings.Join(bodies, "\n")
	for i, b := range bodies {
		if len(b) > limit {
			t.Errorf("part %d is %d characters, over the limit %d", i+1, len(b), limit)
		}
		part, of, ok := ParsePart(b)
		if !ok || part != i+1 || of != len(bodies) {
			t.Errorf("part %d marker: %d/%d %v", i+1, part, of, ok)
		}
		checkMarkdown(t, b)
	}
	for i := 0; i < 40; i++ {
		if n := strings.Count(all, fmt.Sprintf("<code>~ ConfigMap web/cm-%03d</code>", i)); n != 1 {
			t.Errorf("cm-%03d appears %d times across the parts", i, n)
		}
	}
	if !strings.Contains(bodies[len(bodies)-1], "`/apply [-p PROJECT]` applies") {
		t.Error("the last part lacks the footer")
	}
	if strings.Contains(all, "✂ cut") {
		t.Error("objects that fit were cut")
	}
}

func TestObjectLargerThanACommentIsCutWithANote(t *testing.T) {
	const limit = 8000
	bodies := Render(Input{HeadSHA: "abc", Targets: []Target{{Project: "web", Cluster: "c", Plan: samplePlan("c", "web", 1, 2000)}}, Limit: limit})
	for i, b := range bodies {
		if len(b) > limit {
			t.Errorf("part %d is %d characters", i+1, len(b))
		}
		checkMarkdown(t, b)
	}
	all := strings.Join(bodies, "")
	if !strings.Contains(all, "✂ cut: ") || !strings.Contains(all, " of 4003 diff lines shown") {
		t.Fatalf("no honest cut note:\n%s", all)
	}
	if !strings.Contains(all, "Service prod/old") {
		t.Error("the object after the cut one is missing")
	}
}

func TestParsePartIgnoresOtherComments(t *testing.T) {
	for _, body := range []string{"LGTM", "<!-- kubeplan:planx -->", "/apply"} {
		if _, _, ok := ParsePart(body); ok {
			t.Errorf("ParsePart(%q) claimed it", body)
		}
	}
}

// checkMarkdown fails the test when a body leaves a code fence or a <details> open.
func checkMarkdown(t *testing.T, body string) {
	t.Helper()
	if err := CheckMarkdown(body); err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
}

// The split and cut shapes, pinned: a plan over a small limit becomes numbered parts, each
// closing and reopening its section; an object larger than a part is cut with a note.
func TestSplitAndCutCommentsGolden(t *testing.T) {
	split := Render(Input{HeadSHA: "0123456789abcdef", Limit: 2200, Commands: commands,
		Targets: []Target{{Project: "web", Cluster: "prod-eu", Plan: samplePlan("prod-eu", "web", 4, 3)}}})
	if len(split) < 2 {
		t.Fatalf("%d parts", len(split))
	}
	for i, body := range split {
		checkMarkdown(t, body)
		golden.Assert(t, fmt.Sprintf("comment-split-%d.md", i+1), body)
	}
	cut := Render(Input{HeadSHA: "0123456789abcdef", Limit: 1800,
		Targets: []Target{{Project: "web", Cluster: "prod-eu", Plan: samplePlan("prod-eu", "web", 1, 40)}}})
	for i, body := range cut {
		checkMarkdown(t, body)
		golden.Assert(t, fmt.Sprintf("comment-cut-%d.md", i+1), body)
	}
}

// A plan that deletes a Namespace and a CRD says so loudly: in the summary table, in the
// section's title (opened, not folded), in a caution block at the top of the section, and on
// each object's line, with what each deletion takes down.
func TestDestructiveDeletionsAreLoudGolden(t *testing.T) {
	p := samplePlan("prod-eu", "shop", 1, 1)
	p.Changes = append(p.Changes,
		plan.Change{Object: plan.ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "shop-legacy"}, Action: plan.Delete,
			Reason: "applied by kubeplan for this project before, gone from the render", Destructive: true,
			Cascade: &plan.Cascade{Total: 42, Kinds: []plan.KindCount{{Kind: "Pod", Count: 30}, {Kind: "ConfigMap", Count: 10}, {Kind: "Deployment.apps", Count: 2}}},
			Diff:    "--- live/Namespace shop-legacy\n+++ /dev/null\n@@ -1 +0,0 @@\n-kind: Namespace\n"},
		plan.Change{Object: plan.ObjectRef{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "gizmos.example.com"}, Action: plan.Delete,
			Reason: "applied by kubeplan for this project before, gone from the render", Destructive: true,
			Cascade: &plan.Cascade{Total: 500, AtLeast: true, Kinds: []plan.KindCount{{Kind: "Gizmo.example.com", Count: 500}}},
			Diff:    "--- live/CustomResourceDefinition gizmos.example.com\n+++ /dev/null\n@@ -1 +0,0 @@\n-kind: CustomResourceDefinition\n"},
	)
	p.Sort()
	bodies := Render(Input{HeadSHA: "0123456789abcdef0123456789abcdef01234567", Commands: commands,
		Targets: []Target{{Project: "shop", Cluster: "prod-eu", Plan: p}, {Project: "web", Cluster: "prod-eu", Plan: samplePlan("prod-eu", "web", 1, 1)}}})
	if len(bodies) != 1 {
		t.Fatalf("%d parts, want 1", len(bodies))
	}
	body := bodies[0]
	checkMarkdown(t, body)
	for _, want := range []string{
		"| shop | prod-eu | 0 | 1 | 3 | 💥 **2 destructive** · ⚠️ review warnings |",
		"| web | prod-eu | 0 | 1 | 1 | ⚠️ review warnings |",
		"<details open><summary><b>prod-eu / shop — 0 to create, 1 to change, 3 to delete — 💥 2 destructive deletions</b></summary>",
		"> - 💥 Namespace shop-legacy takes down everything in it: 42 objects (30 Pod, 10 ConfigMap, 2 Deployment.apps)",
		"> - 💥 CustomResourceDefinition gizmos.example.com takes down every custom resource of it: at least 500 objects (500 Gizmo.example.com)",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q", want)
		}
	}
	// The caution comes before anything else in the section.
	section := body[strings.Index(body, "prod-eu / shop"):]
	if c, w := strings.Index(section, "[!CAUTION]"), strings.Index(section, "[!WARNING]"); c < 0 || c > w {
		t.Errorf("the caution is not at the top of the section")
	}
	golden.Assert(t, "comment-destructive.md", body)
}
