package policy

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/plan"
)

const manifestPolicy = `
rules:
- name: no-privileged
  kinds: [apps/Deployment, apps/StatefulSet]
  expr: >-
    !object.spec.template.spec.containers.exists(c,
      c.?securityContext.?privileged.orValue(false) == true)
  message: containers must not run privileged
- name: pvc-delete-needs-label
  kinds: [core/PersistentVolumeClaim]
  actions: [delete]
  expr: oldObject.metadata.?labels[?'allow-delete'].orValue('') == 'true'
  message: label the claim allow-delete=true before deleting it
- name: prod-replicas
  clusters: ["prod-*"]
  kinds: [Deployment]
  severity: warn
  expr: object.spec.replicas >= 2
  message: run at least 2 replicas in production
- name: prod-from-main
  clusters: ["prod-*"]
  projects: [web]
  actions: [create, update, delete, unchanged]
  expr: pr.baseRef == 'main' && pr.number > 0 && project == 'web' && cluster.startsWith('prod-')
  message: production changes must target main
`

// obj decodes JSON the way planned and live objects arrive: numbers are float64.
func obj(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func deployment(privileged bool, replicas int) string {
	sc := ""
	if privileged {
		sc = `, "securityContext": {"privileged": true}`
	}
	return `{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
	  "spec": {"replicas": ` + string(rune('0'+replicas)) + `, "template": {"spec": {"containers": [
	    {"name": "sidecar"}, {"name": "app"` + sc + `}]}}}}`
}

func change(apiVersion, kind string, action plan.Action) plan.Change {
	return plan.Change{Object: plan.ObjectRef{APIVersion: apiVersion, Kind: kind, Namespace: "default", Name: "x"}, Action: action}
}

func TestCheck(t *testing.T) {
	p := mustCompile(t, manifestPolicy, "")
	pvc := `{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"%s}}`
	mainPR := PRInfo{Repo: "acme/shop", Number: 7, Author: "bob", BaseRef: "main", HeadRef: "feature"}
	for _, tc := range []struct {
		name             string
		project, cluster string
		ch               plan.Change
		planned, live    string
		pr               PRInfo
		want             []plan.Finding
	}{
		{name: "privileged deployment denied", project: "web", cluster: "staging",
			ch: change("apps/v1", "Deployment", plan.Create), planned: deployment(true, 2), pr: mainPR,
			want: []plan.Finding{{Rule: "no-privileged", Severity: plan.Deny, Message: "containers must not run privileged"}}},
		{name: "unprivileged deployment passes", project: "web", cluster: "staging",
			ch: change("apps/v1", "Deployment", plan.Update), planned: deployment(false, 1), live: deployment(false, 1), pr: mainPR},
		{name: "kind filter: group must match", project: "web", cluster: "staging",
			ch: change("example.com/v1", "Deployment", plan.Create), planned: deployment(true, 2), pr: mainPR},
		{name: "kind filter: other kinds skipped", project: "web", cluster: "staging",
			ch: change("v1", "Service", plan.Create), planned: `{"kind": "Service"}`, pr: mainPR},
		{name: "PVC deletion without label denied", project: "db", cluster: "staging",
			ch: change("v1", "PersistentVolumeClaim", plan.Delete), live: strings.Replace(pvc, "%s", "", 1), pr: mainPR,
			want: []plan.Finding{{Rule: "pvc-delete-needs-label", Severity: plan.Deny, Message: "label the claim allow-delete=true before deleting it"}}},
		{name: "PVC deletion with other labels denied", project: "db", cluster: "staging",
			ch: change("v1", "PersistentVolumeClaim", plan.Delete), live: strings.Replace(pvc, "%s", `, "labels": {"app": "db", "allow-delete": "false"}`, 1), pr: mainPR,
			want: []plan.Finding{{Rule: "pvc-delete-needs-label", Severity: plan.Deny, Message: "label the claim allow-delete=true before deleting it"}}},
		{name: "PVC deletion with label allowed", project: "db", cluster: "staging",
			ch: change("v1", "PersistentVolumeClaim", plan.Delete), live: strings.Replace(pvc, "%s", `, "labels": {"allow-delete": "true"}`, 1), pr: mainPR},
		{name: "action filter: PVC update not checked", project: "db", cluster: "staging",
			ch: change("v1", "PersistentVolumeClaim", plan.Update), planned: strings.Replace(pvc, "%s", "", 1), live: strings.Replace(pvc, "%s", "", 1), pr: mainPR},
		{name: "warn severity on prod", project: "api", cluster: "prod-eu",
			ch: change("apps/v1", "Deployment", plan.Update), planned: deployment(false, 1), live: deployment(false, 2), pr: mainPR,
			want: []plan.Finding{{Rule: "prod-replicas", Severity: plan.Warn, Message: "run at least 2 replicas in production"}}},
		{name: "scope filter: replicas not checked on staging", project: "api", cluster: "staging",
			ch: change("apps/v1", "Deployment", plan.Update), planned: deployment(false, 1), live: deployment(false, 2), pr: mainPR},
		{name: "several findings in rule order", project: "web", cluster: "prod-eu",
			ch: change("apps/v1", "Deployment", plan.Create), planned: deployment(true, 1), pr: PRInfo{Number: 8, BaseRef: "release"},
			want: []plan.Finding{
				{Rule: "no-privileged", Severity: plan.Deny, Message: "containers must not run privileged"},
				{Rule: "prod-replicas", Severity: plan.Warn, Message: "run at least 2 replicas in production"},
				{Rule: "prod-from-main", Severity: plan.Deny, Message: "production changes must target main"},
			}},
		{name: "default actions skip unchanged", project: "api", cluster: "prod-eu",
			ch: change("apps/v1", "Deployment", plan.Unchanged), planned: deployment(true, 1), live: deployment(true, 1), pr: mainPR},
		{name: "unchanged checked when listed", project: "web", cluster: "prod-eu",
			ch: change("v1", "ConfigMap", plan.Unchanged), planned: `{}`, live: `{}`, pr: PRInfo{BaseRef: "dev"},
			want: []plan.Finding{{Rule: "prod-from-main", Severity: plan.Deny, Message: "production changes must target main"}}},
		{name: "failing changes are not checked", project: "web", cluster: "prod-eu",
			ch: change("apps/v1", "Deployment", plan.Fail), planned: deployment(true, 1), pr: PRInfo{}},
		{name: "runtime error is a deny finding", project: "web", cluster: "staging",
			ch: change("apps/v1", "Deployment", plan.Create), planned: `{"kind": "Deployment"}`, pr: mainPR,
			want: []plan.Finding{{Rule: "no-privileged", Severity: plan.Deny, Message: "rule could not be evaluated: no such key: spec"}}},
		{name: "runtime error in a warn rule stays a warning", project: "api", cluster: "prod-eu",
			ch: change("apps/v1", "Deployment", plan.Update), planned: `{"spec": {"template": {"spec": {"containers": []}}}}`, live: `{}`, pr: mainPR,
			want: []plan.Finding{{Rule: "prod-replicas", Severity: plan.Warn, Message: "rule could not be evaluated: no such key: replicas"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var planned, live map[string]any
			if tc.planned != "" {
				planned = obj(t, tc.planned)
			}
			if tc.live != "" {
				live = obj(t, tc.live)
			}
			got := p.Check(context.Background(), nil, Target{Project: tc.project, Cluster: tc.cluster}, tc.ch, planned, live, tc.pr)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("findings:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCheckNullObjects(t *testing.T) {
	p := mustCompile(t, `rules:
- name: nulls
  actions: [create, delete]
  expr: "(action == 'create') == (oldObject == null) && (action == 'delete') == (object == null)"
`, "")
	if f := p.Check(context.Background(), nil, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Create), map[string]any{}, nil, PRInfo{}); f != nil {
		t.Errorf("create: %+v", f)
	}
	if f := p.Check(context.Background(), nil, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Delete), nil, map[string]any{}, PRInfo{}); f != nil {
		t.Errorf("delete: %+v", f)
	}
}

func TestCheckNumbers(t *testing.T) {
	// JSON numbers arrive as float64, unstructured ones as int64: both compare with int literals.
	p := mustCompile(t, `rules: [{name: two, expr: "object.spec.replicas == 2 && object.spec.replicas < 3 && object.spec.replicas > 1.5"}]`, "")
	for _, replicas := range []any{float64(2), int64(2), 2} {
		o := map[string]any{"spec": map[string]any{"replicas": replicas}}
		if f := p.Check(context.Background(), nil, Target{Project: "p", Cluster: "c"}, change("apps/v1", "Deployment", plan.Update), o, o, PRInfo{}); f != nil {
			t.Errorf("%T: %+v", replicas, f)
		}
	}
}

func bigList(n int) map[string]any {
	items := make([]any, n)
	for i := range items {
		items[i] = float64(i)
	}
	return map[string]any{"spec": map[string]any{"items": items}}
}

func TestCheckCostLimit(t *testing.T) {
	p := mustCompile(t, `{allowedOverrides: [rules]}`, `rules:
- name: quadratic
  severity: warn
  expr: object.spec.items.all(x, object.spec.items.all(y, x == y || x != y))
  message: never
`)
	// Lengthen the wall-clock backstop (the race detector slows CEL's cost tracking a lot):
	// the cost limit alone must stop the rule.
	defer func(d time.Duration) { evalTimeout = d }(evalTimeout)
	evalTimeout = time.Minute
	start := time.Now()
	got := p.Check(context.Background(), nil, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Create), bigList(300), nil, PRInfo{})
	want := []plan.Finding{{Rule: "quadratic", Severity: plan.Warn, Message: "rule could not be evaluated: operation cancelled: actual cost limit exceeded"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("findings:\n got %+v\nwant %+v", got, want)
	}
	t.Logf("stopped after %v", time.Since(start))
	// A small list stays well under the limit.
	if got := p.Check(context.Background(), nil, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Create), bigList(20), nil, PRInfo{}); got != nil {
		t.Errorf("small list: %+v", got)
	}
}

func TestCheckTimeout(t *testing.T) {
	p := mustCompile(t, `rules: [{name: slow, expr: "object.spec.items.all(x, object.spec.items.all(y, x == y || x != y))"}]`, "")
	defer func(d time.Duration) { evalTimeout = d }(evalTimeout)
	evalTimeout = time.Millisecond
	got := p.Check(context.Background(), nil, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Create), bigList(1000), nil, PRInfo{})
	if len(got) != 1 || got[0].Severity != plan.Deny || !strings.Contains(got[0].Message, "context deadline exceeded") {
		t.Fatalf("findings: %+v", got)
	}
}

func TestCheckContextCancelled(t *testing.T) {
	p := mustCompile(t, `rules:
- name: loop
  expr: object.spec.items.all(x, x >= 0)
`, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := p.Check(ctx, nil, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Create), bigList(1000), nil, PRInfo{})
	if len(got) != 1 || got[0].Severity != plan.Deny || !strings.Contains(got[0].Message, "rule could not be evaluated") ||
		!strings.Contains(got[0].Message, "context canceled") {
		t.Fatalf("findings: %+v", got)
	}
}

func TestCheckWithoutRules(t *testing.T) {
	var p *Policy
	if f := p.Check(context.Background(), nil, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Create), nil, nil, PRInfo{}); f != nil {
		t.Errorf("nil policy: %+v", f)
	}
}

// Rules never see a Secret's values: not even a rule written to fish for one.
func TestRulesSeeSecretsWithTheirValuesHidden(t *testing.T) {
	p, err := Compile(Config{Rules: []ManifestRule{{Name: "fish", Kinds: []string{"Secret"}, Message: "found it",
		Expr: "!(has(object.data) && object.data.exists(k, object.data[k] == 'czNjcjN0' || object.data[k] == '(hidden)' && false))"},
		{Name: "keys-visible", Kinds: []string{"Secret"}, Message: "keys", Expr: "!('password' in object.data)"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "db"}, "data": map[string]any{"password": "czNjcjN0"}}
	got := p.Check(context.Background(), nil, Target{Project: "p", Cluster: "c"}, change("v1", "Secret", plan.Create), secret, nil, PRInfo{})
	if len(got) != 1 || got[0].Rule != "keys-visible" {
		t.Fatalf("findings %+v: want only keys-visible (keys are visible, values are not)", got)
	}
	if v := secret["data"].(map[string]any)["password"]; v != "czNjcjN0" {
		t.Fatal("Check changed the object it was given")
	}
}
