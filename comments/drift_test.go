package comments_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/driftreport"
	"github.com/kubeplan/kubeplan/internal/golden"
	"github.com/kubeplan/kubeplan/plan"
)

func driftReport() *driftreport.Report {
	at := time.Date(2026, 7, 1, 12, 4, 5, 0, time.UTC)
	ref := func(apiVersion, kind, name string) plan.ObjectRef {
		return plan.ObjectRef{APIVersion: apiVersion, Kind: kind, Namespace: "shop", Name: name}
	}
	return &driftreport.Report{Project: "shop", Cluster: "prod", Commit: "0123456789abcdef0123456789abcdef01234567", Checked: 7,
		Notes: []string{"namespace shop is kubeplan's default for objects without one"},
		Objects: []driftreport.Object{
			{Object: ref("apps/v1", "Deployment", "web"), State: driftreport.Changed, Mode: driftreport.Revert, Source: "apps/shop/web.yaml",
				Fields: []driftreport.Field{{Path: ".spec.replicas", Cause: driftreport.Taken, Owners: []driftreport.Owner{{Manager: "kubectl-edit", Operation: "Update", Time: &at}}},
					{Path: `.spec.template.spec.containers[name="web"].image`, Cause: driftreport.Taken, Owners: []driftreport.Owner{{Manager: "kubectl-set", Operation: "Update", Time: &at}}}},
				Diff: "--- live/apps/v1/Deployment/shop/web\n+++ planned/apps/v1/Deployment/shop/web\n@@ -5,3 +5,3 @@\n-  replicas: 7\n+  replicas: 2\n"},
			{Object: ref("apps/v1", "Deployment", "api"), State: driftreport.Changed, Mode: driftreport.Notify,
				Fields: []driftreport.Field{{Path: ".spec.replicas", Cause: driftreport.Taken, ByDesign: "a HorizontalPodAutoscaler scales it",
					Owners: []driftreport.Owner{{Manager: "kube-controller-manager", Operation: "Update", Subresource: "scale"}}}},
				Diff: "-  replicas: 4\n+  replicas: 1\n"},
			{Object: ref("v1", "Secret", "db"), State: driftreport.Changed, Mode: driftreport.Notify, SecretKeys: []string{"password"},
				Fields: []driftreport.Field{{Path: ".data.password", Cause: driftreport.Taken, Owners: []driftreport.Owner{{Manager: "kubectl-edit", Operation: "Update", Time: &at}}}},
				Diff:   "-  password: (hidden)\n+  password: (hidden, changed)\n"},
			{Object: ref("v1", "ConfigMap", "settings"), State: driftreport.Missing, Mode: driftreport.Notify, Diff: "+data:\n+  color: blue\n"},
			{Object: ref("v1", "ConfigMap", "old<b>"), State: driftreport.Extra, Mode: driftreport.Notify},
		},
		Ignored: []plan.ObjectRef{ref("batch/v1", "CronJob", "report")},
		Failed:  []driftreport.Failure{{Object: ref("example.com/v1", "Gizmo", "g"), Reason: "no matches for kind \"Gizmo\"\nmore"}},
	}
}

// The drift issue's texts, pinned: testdata/golden/drift-issue (go test -update rewrites them).
func TestDriftIssueGolden(t *testing.T) {
	cut := driftReport()
	cut.Objects[0].Diff = strings.Repeat("-  line: changed by hand\n", 400)
	for i := range 30 {
		cut.Objects = append(cut.Objects, driftreport.Object{Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: fmt.Sprintf("extra-%02d", i)},
			State: driftreport.Missing, Mode: driftreport.Notify, Diff: strings.Repeat("+  key: value\n", 40)})
	}
	cases := []struct {
		name, text string
		limit      int
	}{
		{"title", comments.DriftIssueTitle("shop", "prod") + "\n", 0},
		{"body", comments.DriftIssueBody(comments.DriftIssue{Repo: "acme/platform", Report: driftReport()}), 0},
		{"body-cut", comments.DriftIssueBody(comments.DriftIssue{Repo: "acme/platform", Report: cut, Limit: 8000}), 8000},
		{"gone", comments.DriftGone(time.Date(2026, 7, 2, 8, 30, 0, 0, time.FixedZone("CET", 3600)), "fedcba9876543210fedcba9876543210fedcba98"), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := comments.CheckMarkdown(c.text); err != nil {
				t.Errorf("%v:\n%s", err, c.text)
			}
			if c.limit > 0 && len(c.text) > c.limit {
				t.Errorf("%d characters, over the limit %d", len(c.text), c.limit)
			}
			golden.Assert(t, "drift-issue/"+c.name+".md", c.text)
		})
	}
}

// The marker names repository, project and cluster apart, and no name can end the hidden
// comment early.
func TestDriftIssueMarker(t *testing.T) {
	a := comments.DriftIssueMarker("acme/platform", "shop", "prod")
	if a != `<!-- kubeplan:drift {"repo":"acme/platform","project":"shop","cluster":"prod"} -->` {
		t.Fatalf("marker %s", a)
	}
	for _, other := range []string{comments.DriftIssueMarker("acme/platform", "shop", "prod-eu"), comments.DriftIssueMarker("acme/platform", "shop-prod", ""),
		comments.DriftIssueMarker("acme/other", "shop", "prod")} {
		if strings.Contains(other, a) || strings.Contains(a, other) {
			t.Errorf("%s and %s overlap", a, other)
		}
	}
	evil := comments.DriftIssueMarker("acme/platform", "x --> <img src=y>", "prod")
	if strings.Count(evil, "-->") != 1 || !strings.HasSuffix(evil, " -->") || strings.Contains(evil, "<img") {
		t.Errorf("a name ends the marker: %s", evil)
	}
}

// Whatever the limit, the body fits in it, stays valid Markdown and keeps its marker.
func TestDriftIssueBodyFitsItsLimit(t *testing.T) {
	r := driftReport()
	r.Objects[0].Diff = strings.Repeat("-  line: changed by hand\n", 3000)
	for i := range 200 {
		r.Objects = append(r.Objects, driftreport.Object{Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: fmt.Sprintf("cm-%03d", i)},
			State: driftreport.Extra, Mode: driftreport.Notify})
	}
	for limit := 3000; limit <= 70000; limit += 3700 {
		body := comments.DriftIssueBody(comments.DriftIssue{Repo: "acme/platform", Report: r, Limit: limit})
		if len(body) > limit {
			t.Errorf("limit %d: %d characters", limit, len(body))
		}
		if err := comments.CheckMarkdown(body); err != nil {
			t.Errorf("limit %d: %v", limit, err)
		}
		if !strings.HasPrefix(body, comments.DriftIssueMarker("acme/platform", "shop", "prod")) || !strings.Contains(body, "not fit") {
			t.Errorf("limit %d: no marker or no note of what was left out", limit)
		}
	}
}

// A drift issue's marker is read back from the top of a body, and only as kubeplan writes it.
func TestDriftIssueMarkerRoundTrip(t *testing.T) {
	marker := comments.DriftIssueMarker("acme/shop", "web", "prod")
	cases := []struct {
		name, body string
		want       string
	}{
		{"kubeplan's body", comments.DriftIssueBody(comments.DriftIssue{Repo: "acme/shop", Report: &driftreport.Report{Project: "web", Cluster: "prod"}}), marker},
		{"edited in the browser", "\r\n" + marker + "\r\nrest", marker},
		{"not at the top", "hello\n" + marker, ""},
		{"no marker", "Image bump.", ""},
		{"unterminated", comments.DriftMarker + `{"repo":"acme/shop"}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := comments.DriftIssueMarkerOf(c.body); got != c.want {
				t.Fatalf("marker of %q: %q, want %q", c.body, got, c.want)
			}
		})
	}
	if repo, project, cluster, ok := comments.ParseDriftIssueMarker(marker); !ok || repo != "acme/shop" || project != "web" || cluster != "prod" {
		t.Fatalf("parse %q: %q %q %q %v", marker, repo, project, cluster, ok)
	}
	for _, bad := range []string{comments.DriftMarker + `{"repo":"acme/shop","project":"web"} -->`, comments.DriftMarker + `{"repo": "acme/shop","project":"web","cluster":"prod"} -->`, "x"} {
		if _, _, _, ok := comments.ParseDriftIssueMarker(bad); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}
