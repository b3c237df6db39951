package planner_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/plan"
)

// A pull request author cannot learn a live Secret's value by guessing it: a plan of a Secret
// holding the right value and one holding a wrong value produce the same comment, byte for
// byte, whoever wrote the live value and however the apiserver would treat a change to it.
func TestGuessingASecretValueLearnsNothing(t *testing.T) {
	const live, wrong = "hunter2", "hunter3"
	cases := []struct {
		name string
		// setUp makes the live Secret db (value live in key password) in ns.
		setUp func(t *testing.T, ns string)
		// guess is the pull request's Secret with value v.
		guess func(v string) string
		// warning, when set, is a warning the plan must carry, guess right or wrong.
		warning string
		// fails, when set, is the reason the Secret fails with, guess right or wrong.
		fails string
	}{
		{name: "created with kubectl by hand", setUp: func(t *testing.T, ns string) {
			kubectl(t, "", "create", "secret", "generic", "db", "-n", ns, "--from-literal=password="+live, "--from-literal=user=admin")
		}, guess: stringData, warning: `may take over .data.password from field manager "kubectl-create"`},
		{name: "created with kubectl by hand, guessed in data", setUp: func(t *testing.T, ns string) {
			kubectl(t, "", "create", "secret", "generic", "db", "-n", ns, "--from-literal=password="+live)
		}, guess: inData, warning: `may take over .data.password from field manager "kubectl-create"`},
		{name: "applied by kubeplan", setUp: func(t *testing.T, ns string) {
			kubectl(t, stringData(live), "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
		}, guess: stringData},
		{name: "applied by kubeplan, guessed in data", setUp: func(t *testing.T, ns string) {
			kubectl(t, stringData(live), "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
		}, guess: inData},
		{name: "applied by another field manager", setUp: func(t *testing.T, ns string) {
			kubectl(t, stringData(live), "apply", "--server-side", "--field-manager=vault-sync", "-n", ns, "-f", "-")
		}, guess: stringData, warning: `may take over .data.password from field manager "vault-sync"`},
		{name: "rotated by hand after kubeplan applied it", setUp: func(t *testing.T, ns string) {
			kubectl(t, stringData("first-"+live), "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
			kubectl(t, "", "-n", ns, "patch", "secret", "db", "--type=merge", "-p", `{"data":{"password":"`+b64(live)+`"}}`)
		}, guess: stringData, warning: `may take over .data.password from field manager "kubectl-patch"`},
		{name: "immutable", setUp: func(t *testing.T, ns string) {
			kubectl(t, stringData(live)+"immutable: true\n", "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
		}, guess: func(v string) string { return stringData(v) + "immutable: true\n" },
			warning: "immutable Secret: the apply fails if a value set here differs from the live one"},
		{name: "an admission policy refuses changed values", setUp: func(t *testing.T, ns string) {
			kubectl(t, stringData(live), "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
			admissionPolicy(t, ns, `expression: "object.data == oldObject.data"`, "secret values are frozen")
		}, guess: stringData},
		{name: "an admission policy quotes the value it refuses", setUp: func(t *testing.T, ns string) {
			kubectl(t, stringData(live), "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
			admissionPolicy(t, ns, `expression: "false"
    messageExpression: "'refused: password is ' + string(object.data.password)"`, "refused: password is")
		}, guess: stringData, fails: "refused: password is (hidden)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := namespace(t)
			tc.setUp(t, ns)
			right := planFiles(t, "guess", ns, map[string]string{"db.yaml": tc.guess(live)})
			wrongPlan := planFiles(t, "guess", ns, map[string]string{"db.yaml": tc.guess(wrong)})

			say := func(p *plan.Plan) string {
				return strings.Join(comments.Render(comments.Input{HeadSHA: "0123456789abcdef", Limit: forge.MaxGitHubComment,
					Targets: []comments.Target{{Project: "guess", Cluster: "test", Plan: p}}}), "\n")
			}
			if a, b := say(right), say(wrongPlan); a != b {
				t.Fatalf("the right guess and a wrong one read differently:\n--- right\n%s\n--- wrong\n%s", a, b)
			}
			if right.Hash() != wrongPlan.Hash() {
				t.Error("the right guess and a wrong one have different plan hashes")
			}
			if tc.fails != "" {
				if ch := expectAction(t, right, "Secret "+ns+"/db", plan.Fail); !strings.Contains(ch.Reason, tc.fails) {
					t.Errorf("reason %q, want %q", ch.Reason, tc.fails)
				}
				return
			}
			ch := expectAction(t, right, "Secret "+ns+"/db", plan.Update)
			if !strings.Contains(ch.Diff, "+  password: (hidden, set by this change)\n") || strings.Join(ch.SecretKeys, ",") != "password" {
				t.Errorf("the plan does not say the change sets password: keys %v\n%s", ch.SecretKeys, ch.Diff)
			}
			if tc.warning != "" && !strings.Contains(strings.Join(ch.Warnings, "\n"), tc.warning) {
				t.Errorf("warnings %q lack %q", ch.Warnings, tc.warning)
			}
			if strings.Contains(say(right), live) || strings.Contains(say(right), b64(live)) {
				t.Errorf("the comment holds the value:\n%s", say(right))
			}
		})
	}
}

func inData(v string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: %s}\n", b64(v))
}

func stringData(v string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: %s}\n", v)
}

// admissionPolicy installs a ValidatingAdmissionPolicy on updates of Secrets in ns with the
// given validation, and waits until the apiserver enforces it: until a Secret that adds a key
// (whatever the guess, its values change) is refused with a reason holding refusal.
func admissionPolicy(t *testing.T, ns, validation, refusal string) {
	t.Helper()
	kubectl(t, `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: secrets-`+ns+`}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [secrets]}]
  validations:
  - `+validation+`
    message: "secret values are frozen"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: secrets-`+ns+`}
spec:
  policyName: secrets-`+ns+`
  validationActions: [Deny]
  matchResources: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: `+ns+`}}}
`, "apply", "--server-side", "-f", "-")
	addsKey := "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: any, extra: x}\n"
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		p := planFiles(t, "probe", ns, map[string]string{"db.yaml": addsKey})
		if ch := change(t, p, "Secret "+ns+"/db"); ch.Action == plan.Fail && strings.Contains(ch.Reason, refusal) {
			return
		}
	}
	t.Fatal("the admission policy never took effect")
}
