package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/access"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/policy"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadFileThenEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeplan.yaml")
	if err := os.WriteFile(path, []byte(`listen: ":9090"
state: /var/lib/kubeplan/state.db
jobTimeout: 20m
retryBackoff: 5s
github:
  baseURL: https://ghe.example.com/api/v3/
  appID: 1234
  privateKeyFile: /etc/kubeplan/app.pem
clusters:
- {name: prod-eu, kubeconfig: /etc/kubeplan/prod-eu.kubeconfig}
- {name: in-here, inCluster: true}
defaultCluster: prod-eu
repositories: ["acme/*"]
apply: {healthTimeout: 3m}
policy:
  approvals:
  - {name: prod, clusters: ["prod-*"], minApprovals: 2, teams: [acme/sre]}
  rules:
  - {name: no-latest, kinds: [Deployment], expr: "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))", message: pin image tags}
  allowedOverrides: [rules]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env(map[string]string{"KUBEPLAN_GITHUB_WEBHOOK_SECRET": "s3", "KUBEPLAN_GITHUB_PRIVATE_KEY": "PEM", "KUBEPLAN_LISTEN": ":7070"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Apply.HealthTimeout.Duration != 3*time.Minute || len(c.Policy.Approvals) != 1 || c.Policy.Rules[0].Name != "no-latest" || c.Policy.AllowedOverrides[0] != "rules" {
		t.Errorf("apply and policy: %+v %+v", c.Apply, c.Policy)
	}
	if c.JobTimeout.Duration != 20*time.Minute || c.RetryBackoff.Duration != 5*time.Second {
		t.Errorf("durations: %v %v", c.JobTimeout, c.RetryBackoff)
	}
	if c.Listen != ":7070" || c.State != "/var/lib/kubeplan/state.db" || c.GitHub.AppID != 1234 || c.GitHub.WebhookSecret != "s3" || string(c.GitHub.PrivateKey) != "PEM" {
		t.Fatalf("%+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	reg, err := c.Registry()
	if err != nil || reg.Default != "prod-eu" || strings.Join(reg.Names(), ",") != "in-here,prod-eu" {
		t.Fatalf("registry %v %v", reg, err)
	}
	if !c.Allowed("acme/platform") || c.Allowed("evil/platform") {
		t.Error("allowlist")
	}
}

func TestConfigMistakesAreClear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(path, []byte("listn: ':1'\n"), 0o600)
	if _, err := Load(path, env(nil)); err == nil || !strings.Contains(err.Error(), `unknown field "listn"`) {
		t.Errorf("typo: %v", err)
	}
	c := Default()
	c.GitHub.Token = "t"
	c.JobTimeout.Duration = 0
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "KUBEPLAN_GITHUB_WEBHOOK_SECRET is required") || !strings.Contains(err.Error(), "no clusters configured") ||
		!strings.Contains(err.Error(), "jobTimeout must be positive") || strings.Contains(err.Error(), "\n") {
		t.Errorf("validate: %v", err)
	}
}

// A server rule that does not compile, or a health wait as long as a job, stops serve at start.
func TestPolicyAndApplyMistakesStopTheServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeplan.yaml")
	_ = os.WriteFile(path, []byte(`jobTimeout: 10m
apply: {healthTimeout: 10m}
clusters: [{name: a, inCluster: true}]
policy:
  rules:
  - {name: broken, expr: "object.spec.replicas >", message: x}
`), 0o600)
	c, err := Load(path, env(map[string]string{"KUBEPLAN_GITHUB_TOKEN": "t", "KUBEPLAN_GITHUB_WEBHOOK_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), `policy rule "broken"`) || !strings.Contains(err.Error(), "apply.healthTimeout (10m0s) must be shorter than jobTimeout") {
		t.Errorf("validate: %v", err)
	}
	// The default health wait follows a short job timeout instead of failing.
	d := Default()
	d.GitHub.Token, d.GitHub.WebhookSecret, d.JobTimeout.Duration = "t", "s", 2*time.Minute
	d.Clusters = c.Clusters
	before := d
	if rt, err := d.Prepare(); err != nil || rt.HealthTimeout != time.Minute {
		t.Errorf("default health timeout with jobTimeout 2m: %v, %v", rt.HealthTimeout, err)
	}
	// Preparing derives; it never rewrites the configuration it checks.
	if !reflect.DeepEqual(d, before) {
		t.Errorf("Prepare changed the configuration: %+v", d)
	}
}

// Access rules in the file: the shop repository is held to its namespaces on prod, staging
// stays open to every allowlisted repository, and a rule that names no configured cluster stops
// serve instead of leaving the cluster it meant open.
func TestClusterAndNamespaceAccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeplan.yaml")
	if err := os.WriteFile(path, []byte(`clusters:
- {name: prod, inCluster: true}
- {name: staging, inCluster: true}
repositories: ["acme/*"]
access:
- {repositories: [acme/shop], clusters: [prod], namespaces: ["shop-*"]}
- {repositories: ["github:acme/platform"], clusters: [prod], clusterScoped: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env(map[string]string{"KUBEPLAN_GITHUB_TOKEN": "t", "KUBEPLAN_GITHUB_WEBHOOK_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		forge, repo, cluster, namespace string
		allowed                         bool
	}{
		{"github", "acme/shop", "prod", "shop-web", true},
		{"github", "acme/shop", "prod", "payments", false},
		{"github", "acme/shop", "staging", "payments", true},
		{"github", "acme/other", "prod", "shop-web", false},
		{"github", "acme/other", "staging", "anything", true},
		{"github", "acme/platform", "prod", "payments", true},
		{"gitlab", "acme/platform", "prod", "payments", false},
	} {
		g, err := c.Access.For(tc.forge, tc.repo, tc.cluster)
		if err == nil {
			err = g.Permits(plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: tc.namespace, Name: "x"})
		}
		if (err == nil) != tc.allowed {
			t.Errorf("%s:%s on %s in %s: allowed %v, want %v (%v)", tc.forge, tc.repo, tc.cluster, tc.namespace, err == nil, tc.allowed, err)
		}
	}

	c.Access = append(c.Access, access.Rule{Repositories: []string{"acme/shop"}, Clusters: []string{"prdo"}})
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `access[2]: cluster pattern "prdo" matches no configured cluster (prod, staging)`) {
		t.Errorf("a rule for a cluster that does not exist: %v", err)
	}
}

// The App key named by github.privateKeyFile is read by Prepare into what serve runs with, and
// the server policy comes out compiled; the configuration itself is left as loaded.
func TestPrepareReadsTheKeyFileAndCompilesThePolicy(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, []byte("KEY FROM FILE"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.GitHub.AppID, c.GitHub.PrivateKeyFile, c.GitHub.WebhookSecret = 7, keyFile, "s"
	c.Clusters = []cluster.Target{{Name: "prod", Kubeconfig: filepath.Join(dir, "kubeconfig")}}
	c.Policy.Rules = []policy.ManifestRule{{Name: "no-latest", Expr: "true"}}
	rt, err := c.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if string(rt.GitHubPrivateKey) != "KEY FROM FILE" || c.GitHub.PrivateKey != nil {
		t.Errorf("key: runtime %q, config %q", rt.GitHubPrivateKey, c.GitHub.PrivateKey)
	}
	if got := rt.Policy.RuleNames(); len(got) != 1 || got[0] != "no-latest" {
		t.Errorf("compiled policy rules: %v", got)
	}
	if rt.HealthTimeout != defaultHealthTimeout {
		t.Errorf("health timeout %s", rt.HealthTimeout)
	}
	c.GitHub.PrivateKeyFile = filepath.Join(dir, "missing.pem")
	if _, err := c.Prepare(); err == nil || !strings.Contains(err.Error(), "github private key") {
		t.Errorf("missing key file: %v", err)
	}
}

// Drift settings: the interval defaults to 30m, the Slack URL comes from the file or the
// environment and no message quotes it, every repository entry is checked.
func TestDriftSettings(t *testing.T) {
	const slack = "https://hooks.slack.example/services/T0/B0/secret-part"
	write := func(body string) string {
		path := filepath.Join(t.TempDir(), "kubeplan.yaml")
		if err := os.WriteFile(path, []byte("clusters: [{name: prod, inCluster: true}]\nrepositories: [\"acme/*\"]\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	secrets := map[string]string{"KUBEPLAN_GITHUB_TOKEN": "t", "KUBEPLAN_GITHUB_WEBHOOK_SECRET": "s"}

	c, err := Load(write(""), env(secrets))
	if err != nil || c.Drift.Interval.Duration != 30*time.Minute || c.Drift.AllowRevert || c.Validate() != nil {
		t.Fatalf("defaults: %+v %v %v", c.Drift, err, c.Validate())
	}

	withEnv := map[string]string{"KUBEPLAN_DRIFT_SLACK_WEBHOOK_URL": slack}
	for k, v := range secrets {
		withEnv[k] = v
	}
	c, err = Load(write("drift: {interval: 5m, repositories: [\"github:acme/shop\"], allowRevert: true}\n"), env(withEnv))
	if err != nil || c.Validate() != nil {
		t.Fatal(err, c.Validate())
	}
	if c.Drift.Interval.Duration != 5*time.Minute || !c.Drift.AllowRevert || c.Drift.SlackWebhookURL != slack ||
		!reflect.DeepEqual(c.DriftRepositories(), []DriftRepository{{Forge: "github", Name: "acme/shop"}}) {
		t.Fatalf("%+v %+v", c.Drift, c.DriftRepositories())
	}

	for _, tc := range []struct{ body, want string }{
		{"drift: {interval: -1m}\n", "drift.interval must not be negative"},
		{"drift: {repositories: [acme/shop]}\n", `"acme/shop" is not github:owner/name`},
		{"drift: {repositories: [\"gitlab:acme/shop\"]}\n", "on gitlab, which this server is not configured for"},
		{"drift: {repositories: [\"github:other/shop\"]}\n", "not in the repositories allowlist"},
		{"drift: {slackWebhookURL: \"ftp://x/secret-part\"}\n", "drift.slackWebhookURL (or KUBEPLAN_DRIFT_SLACK_WEBHOOK_URL) is not an http(s) URL"},
		{"drift: {intervall: 5m}\n", "unknown field"},
	} {
		c, err := Load(write(tc.body), env(secrets))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret-part") {
			t.Errorf("%s: error %v; want it to say %q and never quote the URL", strings.TrimSpace(tc.body), err, tc.want)
		}
	}
}

// Sign-in settings: the client ids in the file, the secrets and the session key only from the
// environment; sign-in half configured is refused, naming what is missing, never a secret.
func TestUISignInSettings(t *testing.T) {
	write := func(body string) string {
		path := filepath.Join(t.TempDir(), "kubeplan.yaml")
		if err := os.WriteFile(path, []byte("clusters: [{name: prod, inCluster: true}]\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	secrets := map[string]string{"KUBEPLAN_GITHUB_TOKEN": "t", "KUBEPLAN_GITHUB_WEBHOOK_SECRET": "s",
		"KUBEPLAN_UI_GITHUB_CLIENT_SECRET": "gh-secret-value", "KUBEPLAN_UI_GITLAB_SECRET": "gl-secret-value",
		"KUBEPLAN_UI_SESSION_KEY": "a-session-key-of-at-least-32-bytes!"}
	c, err := Load(write("ui:\n  publicURL: https://kubeplan.example.com\n  github: {clientID: Iv23.abc}\n  gitlab: {applicationID: app-1}\n  sessionLifetime: 4h\n"), env(secrets))
	if err != nil || c.Validate() != nil {
		t.Fatal(err, c.Validate())
	}
	if !c.UI.SignIn() || c.UI.GitHub.ClientID != "Iv23.abc" || c.UI.GitHub.ClientSecret != "gh-secret-value" || c.UI.GitLab.Secret != "gl-secret-value" ||
		string(c.UI.SessionKey) != secrets["KUBEPLAN_UI_SESSION_KEY"] || c.UI.SessionLifetime.Duration != 4*time.Hour {
		t.Errorf("ui: %+v", c.UI)
	}
	if c, _ := Load(write(""), env(secrets)); c.UI.SignIn() || c.Validate() != nil {
		t.Errorf("no sign-in configured: %v %v", c.UI.SignIn(), c.Validate())
	}

	for _, tc := range []struct {
		body, drop, want string
	}{
		{"ui: {github: {clientID: x}}\n", "", "ui.publicURL must be the page's absolute http(s) address"},
		{"ui: {publicURL: \"kubeplan.example.com\", gitlab: {applicationID: x}}\n", "", "ui.publicURL must be"},
		{"ui: {publicURL: \"https://k.example\", github: {clientID: x}}\n", "KUBEPLAN_UI_GITHUB_CLIENT_SECRET", "KUBEPLAN_UI_GITHUB_CLIENT_SECRET is not"},
		{"ui: {publicURL: \"https://k.example\", gitlab: {applicationID: x}}\n", "KUBEPLAN_UI_GITLAB_SECRET", "KUBEPLAN_UI_GITLAB_SECRET is not"},
		{"ui: {publicURL: \"https://k.example\", github: {clientID: x}}\n", "KUBEPLAN_UI_SESSION_KEY", "KUBEPLAN_UI_SESSION_KEY must be at least 32 bytes"},
		{"ui: {sessionLifetime: -1h}\n", "", "ui.sessionLifetime must not be negative"},
		{"ui: {github: {clientSecret: x}}\n", "", "unknown field"},
	} {
		e := map[string]string{}
		for k, v := range secrets {
			if k != tc.drop {
				e[k] = v
			}
		}
		c, err := Load(write(tc.body), env(e))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret-value") || strings.Contains(err.Error(), "at-least-32") {
			t.Errorf("%s: %v; want %q, no secret", strings.TrimSpace(tc.body), err, tc.want)
		}
	}
}

// history.retention is read from the file; the default keeps the history for ever, and a
// negative one stops serve.
func TestHistoryRetention(t *testing.T) {
	if d := Default(); d.History.Retention.Duration != 0 {
		t.Fatalf("default history.retention %s, want 0 (keep for ever)", d.History.Retention.Duration)
	}
	path := filepath.Join(t.TempDir(), "kubeplan.yaml")
	_ = os.WriteFile(path, []byte("history: {retention: 8760h}\n"), 0o600)
	c, err := Load(path, env(nil))
	if err != nil || c.History.Retention.Duration != 365*24*time.Hour {
		t.Fatalf("history.retention from the file: %s %v", c.History.Retention.Duration, err)
	}
	c.History.Retention.Duration = -time.Hour
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "history.retention must not be negative") {
		t.Errorf("validate a negative history.retention: %v", err)
	}
}
