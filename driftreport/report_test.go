package driftreport

import (
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/plan"
)

func reportOf(objects ...Object) *Report {
	return &Report{Project: "shop", Cluster: "prod", Objects: objects}
}

func web(fields ...Field) Object {
	return Object{Object: plan.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"}, State: Changed, Mode: Notify, Fields: fields}
}

func at(hhmm string) *time.Time {
	t, _ := time.Parse("15:04", hhmm)
	return &t
}

var (
	replicas   = Field{Path: ".spec.replicas", Cause: Taken, Owners: []Owner{{Manager: "kubectl-edit", Operation: "Update", Time: at("12:04")}}}
	image      = Field{Path: `.spec.template.spec.containers[name="web"].image`, Cause: Taken, Owners: []Owner{{Manager: "kubectl", Operation: "Update"}}}
	hpa        = Field{Path: ".spec.replicas", Cause: Taken, ByDesign: "an HPA", Owners: []Owner{{Manager: "kube-controller-manager", Operation: "Update", Subresource: "scale"}}}
	missingCM  = Object{Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "settings"}, State: Missing, Mode: Notify}
	extraCM    = Object{Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "settings"}, State: Extra, Mode: Notify}
	withDiff   = func(o Object, d string) Object { o.Diff = d; return o }
	withMode   = func(o Object, m Mode) Object { o.Mode = m; return o }
	laterOwner = func(f Field) Field {
		f.Owners = []Owner{{Manager: "someone-else", Operation: "Update", Time: at("18:30")}}
		return f
	}
)

// The signature is the drift itself: the objects that count, their state and drifted field
// paths. Values (diffs), owners, times and modes do not move it; a new drifted field, object
// or state does.
func TestSignature(t *testing.T) {
	base := reportOf(web(replicas), missingCM)
	same := []struct {
		name string
		r    *Report
	}{
		{"the same drift again", reportOf(web(replicas), missingCM)},
		{"objects in another order", reportOf(missingCM, web(replicas))},
		{"another value (the diff)", reportOf(withDiff(web(replicas), "-  replicas: 7\n+  replicas: 2\n"), missingCM)},
		{"another owner and time", reportOf(web(laterOwner(replicas)), missingCM)},
		{"another mode", reportOf(withMode(web(replicas), Revert), missingCM)},
		{"a field owned by design besides", reportOf(web(replicas, Field{Path: ".spec.x", Cause: Taken, ByDesign: "rule"}), missingCM)},
		{"an object owned by design only besides", func() *Report {
			o := web(hpa)
			o.Object.Name = "api"
			return reportOf(web(replicas), missingCM, o)
		}()},
	}
	for _, tc := range same {
		if got := tc.r.Signature(); got != base.Signature() {
			t.Errorf("%s: signature moved", tc.name)
		}
	}
	differ := []struct {
		name string
		r    *Report
	}{
		{"a new drifted field", reportOf(web(replicas, image), missingCM)},
		{"another field", reportOf(web(image), missingCM)},
		{"an object fewer", reportOf(web(replicas))},
		{"missing became extra", reportOf(web(replicas), extraCM)},
		{"another cluster", &Report{Project: "shop", Cluster: "prod-us", Objects: []Object{web(replicas), missingCM}}},
	}
	for _, tc := range differ {
		if got := tc.r.Signature(); got == base.Signature() {
			t.Errorf("%s: signature did not move", tc.name)
		}
	}
	if got := reportOf(web(hpa)).Signature(); got != "" {
		t.Errorf("drift owned by design only: signature %q, want none", got)
	}
}

func TestFieldWording(t *testing.T) {
	cases := []struct {
		f    Field
		want string
	}{
		{replicas, `.spec.replicas changed by "kubectl-edit" (Update) at 0000-01-01 12:04:00 UTC`},
		{hpa, `.spec.replicas changed by "kube-controller-manager" (Update, subresource scale) — not counted: an HPA`},
		{Field{Path: ".data.size", Cause: Removed}, ".data.size removed from the live object (managedFields do not record by whom)"},
		{Field{Path: ".data.size", Cause: Git}, ".data.size changed in git since kubeplan last applied it"},
		{Field{Path: ".data.size", Cause: Unknown}, ".data.size differs from git; no field manager owns it"},
	}
	for _, tc := range cases {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}
