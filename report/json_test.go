package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/plan"
)

// `kubeplan plan -o json` writes a plan a change at a time; scripts and stored plans read the
// bytes the whole plan marshalled at once gives, indentation and escaping included.
func TestJSONWritesTheWholePlansBytes(t *testing.T) {
	cm := plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "settings"}
	ns := plan.ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "legacy"}
	secret := plan.ObjectRef{APIVersion: "v1", Kind: "Secret", Namespace: "shop", Name: "db"}
	for _, tc := range []struct {
		name string
		plan *plan.Plan
	}{
		{"one change", &plan.Plan{Project: "web", Cluster: "prod", Changes: []plan.Change{{Object: cm, Action: plan.Create, Diff: "+a: b\n"}}}},
		{"changes with HTML, quotes, non-ASCII and nested lists", &plan.Plan{Project: "web", Cluster: "prod", ClusterVersion: "v1.37.2",
			Renderer: "plain", Notes: []string{"a <note> & \"more\""}, Changes: []plan.Change{
				{Object: ns, Action: plan.Delete, Diff: "-ns", Destructive: true, Cascade: &plan.Cascade{Total: 3, Kinds: []plan.KindCount{{Kind: "Pod", Count: 3}}}},
				{Object: cm, Action: plan.Update, Diff: "-a: <b>\n+a: \"é\" & ü\u2028\n", Source: "project/cm.yaml",
					Warnings: []string{"takes over .data.a from field manager \"kubectl\""}, Conflicts: true,
					Findings: []plan.Finding{{Rule: "r", Severity: plan.Warn, Message: "m"}}},
				{Object: secret, Action: plan.Update, Diff: "(hidden)", SecretKeys: []string{"password"}, LiveSecretVersion: "41"},
				{Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "same"}, Action: plan.Unchanged},
			}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got, want bytes.Buffer
			if err := JSON(&got, tc.plan); err != nil {
				t.Fatal(err)
			}
			c := tc.plan.Counts()
			whole := jsonPlan{Plan: tc.plan, Hash: tc.plan.Hash(), Summary: tc.plan.Summary(),
				Counts:   jsonCounts{c.Create, c.Update, c.Delete, c.Unchanged, c.Fail},
				Warnings: Warnings(tc.plan), Destructive: Destructive(tc.plan)}
			if err := encodeWhole(&want, whole); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("JSON:\n%s\nwant:\n%s", got.String(), want.String())
			}
			if !strings.Contains(got.String(), "\n  \"changes\": [\n    {") {
				t.Errorf("JSON has no changes list:\n%s", got.String())
			}
		})
	}
}
