// Package config is the server's configuration: an optional YAML file, then environment
// variables for secrets, then command-line flags (which win).
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubeplan/kubeplan/access"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/policy"
)

// Config is everything `kubeplan serve` needs.
type Config struct {
	// Listen is the HTTP address for webhooks, health and metrics.
	Listen string `json:"listen"`
	// State is the embedded SQLite file (one replica), or a postgres:// URL of the PostgreSQL
	// database several replicas share.
	State string `json:"state"`
	// WorkDir holds repository checkouts.
	WorkDir string `json:"workDir"`
	// CheckoutCacheMB bounds the repository checkouts kept on disk (least recently used go first).
	CheckoutCacheMB int `json:"checkoutCacheMB"`
	// Workers run queued jobs in parallel (different pull requests).
	Workers int `json:"workers"`
	// JobTimeout bounds one job.
	JobTimeout metav1.Duration `json:"jobTimeout"`
	// JobAttempts is how often a failing job runs (forge outage, cluster unreachable) before
	// it is recorded as failed; RetryBackoff is the first wait between attempts (doubling).
	JobAttempts  int             `json:"jobAttempts"`
	RetryBackoff metav1.Duration `json:"retryBackoff"` // durations are written "15m", "10s"
	// Retention is how long finished jobs and webhook delivery ids are kept (a delivery
	// redelivered within it is recognised and not worked twice).
	Retention metav1.Duration `json:"retention"`
	// ForgeTimeout bounds the wait for GitHub's or GitLab's answer to one API request (until
	// the response headers); a forge that does not answer fails the call with that reason.
	ForgeTimeout metav1.Duration `json:"forgeTimeout"`
	// ShutdownGrace is how long, once told to stop (SIGTERM), serve lets running jobs finish;
	// jobs still running then are handed back to the queue for the next replica or start.
	ShutdownGrace metav1.Duration `json:"shutdownGrace"`
	// PlanDrafts plans draft pull requests.
	PlanDrafts bool `json:"planDrafts"`
	// Repositories, when set, is the allowlist of repositories (owner/name; "*" suffix globs).
	Repositories []string `json:"repositories,omitempty"`

	GitHub struct {
		BaseURL        string `json:"baseURL,omitempty"`
		AppID          int64  `json:"appID,omitempty"`
		PrivateKeyFile string `json:"privateKeyFile,omitempty"`
		// Secrets come from the environment, never the file: KUBEPLAN_GITHUB_TOKEN,
		// KUBEPLAN_GITHUB_WEBHOOK_SECRET, KUBEPLAN_GITHUB_PRIVATE_KEY (PEM).
		Token         string `json:"-"`
		WebhookSecret string `json:"-"`
		PrivateKey    []byte `json:"-"`
	} `json:"github"`
	GitLab struct {
		BaseURL string `json:"baseURL,omitempty"`
		// KUBEPLAN_GITLAB_TOKEN, KUBEPLAN_GITLAB_WEBHOOK_SECRET.
		Token         string `json:"-"`
		WebhookSecret string `json:"-"`
	} `json:"gitlab"`

	Clusters       []cluster.Target `json:"clusters"`
	DefaultCluster string           `json:"defaultCluster,omitempty"`
	// Access says which repositories may deploy to which clusters and namespaces. A cluster
	// no rule names is open to every repository the allowlist admits.
	Access access.Rules `json:"access,omitempty"`

	// Policy is the server's roles, approval and manifest rules, and what a repository's
	// .kubeplan.yaml may add to them (allowedOverrides).
	Policy policy.Config `json:"policy"`
	Apply  struct {
		// HealthTimeout bounds the wait for applied objects to become healthy (kstatus).
		HealthTimeout metav1.Duration `json:"healthTimeout"`
	} `json:"apply"`
	// Render bounds each render of a Helm chart or kustomization, done in a child process so
	// that a hostile template (a loop of a billion turns) or kustomization (a build of minutes,
	// a file copied forty times) fails its own render, not the service.
	Render struct {
		Timeout  metav1.Duration `json:"timeout"`
		MemoryMB int64           `json:"memoryMB"`
	} `json:"render"`
	// Drift is the scheduled drift check (docs/drift.md).
	Drift Drift `json:"drift"`
	// UI is the history's web page and JSON API, and who signs in to it (docs/history.md).
	UI UI `json:"ui"`
	// History is the audit history (docs/history.md).
	History History `json:"history"`
}

// History says how long the audit history is kept.
type History struct {
	// Retention prunes entries older than this; 0 (the default) keeps them for ever. The
	// queue's retention never touches the history.
	Retention metav1.Duration `json:"retention"`
}

// UIListen is the address the web page listens on: ui.listen, or listen.
func (c Config) UIListen() string {
	if c.UI.Listen != "" {
		return c.UI.Listen
	}
	return c.Listen
}

// UI is the web page (package ui) and who may sign in through which forge (package webauth).
type UI struct {
	// Enabled serves the page under /ui/ and the API under /api/v1/; off by default.
	// Without sign-in it must listen on loopback only.
	Enabled bool `json:"enabled"`
	// Listen is the page's own HTTP address; empty serves it on Listen, beside the webhooks.
	Listen string `json:"listen,omitempty"`
	// PublicURL is the page's address as browsers reach it (https://kubeplan.example.com): the
	// base of the OAuth callback URLs registered with the forges. Required with sign-in.
	PublicURL string `json:"publicURL,omitempty"`
	// GitHub is the GitHub OAuth App, or GitHub App, people sign in with; its secret comes from
	// KUBEPLAN_UI_GITHUB_CLIENT_SECRET.
	GitHub struct {
		ClientID     string `json:"clientID,omitempty"`
		ClientSecret string `json:"-"`
		// Scopes are asked of an OAuth App (a GitHub App ignores them): an OAuth App's token
		// sees private repositories only with "repo".
		Scopes []string `json:"scopes,omitempty"`
	} `json:"github"`
	// GitLab is the GitLab application people sign in with (scopes read_user read_api); its
	// secret comes from KUBEPLAN_UI_GITLAB_SECRET.
	GitLab struct {
		ApplicationID string `json:"applicationID,omitempty"`
		Secret        string `json:"-"`
	} `json:"gitlab"`
	// SessionKey signs and encrypts the session cookies: KUBEPLAN_UI_SESSION_KEY, at least 32
	// bytes, the same on every replica. Required with sign-in.
	SessionKey []byte `json:"-"`
	// SessionLifetime bounds a sign-in (default 8h; a forge token that expires sooner ends it
	// sooner).
	SessionLifetime metav1.Duration `json:"sessionLifetime,omitempty"`
}

// SignIn says whether sign-in through a forge is configured.
func (u UI) SignIn() bool { return u.GitHub.ClientID != "" || u.GitLab.ApplicationID != "" }

// Drift says which repositories' default branches serve checks for drift, how often, and
// what it may do about it.
type Drift struct {
	// Interval between checks of a project on a cluster; 0 turns scheduled checks off. A
	// project's .kubeplan.yaml may ask for another.
	Interval metav1.Duration `json:"interval"`
	// Repositories whose default branch is checked, as "github:owner/name" or
	// "gitlab:group/project": serve learns of no repository otherwise (webhooks speak of pull
	// requests, not of what to watch).
	Repositories []string `json:"repositories,omitempty"`
	// SlackWebhookURL is a Slack-compatible incoming webhook told of new, changed and resolved
	// drift. A secret (the URL is the credential): KUBEPLAN_DRIFT_SLACK_WEBHOOK_URL sets it
	// too, and it is never logged.
	SlackWebhookURL string `json:"slackWebhookURL,omitempty"`
	// AllowRevert lets repositories choose the revert mode; without it revert is reported as
	// notify, with a note.
	AllowRevert bool `json:"allowRevert,omitempty"`
	// Issues keeps a forge issue per project × cluster in step with its drift (opened, edited
	// in place, closed when the drift is gone); on by default.
	Issues bool `json:"issues"`
}

// Forge and name of a drift.repositories entry ("github:acme/shop").
func (d Drift) split(entry string) (forge, repo string, ok bool) {
	forge, repo, ok = strings.Cut(entry, ":")
	return forge, repo, ok && (forge == "github" || forge == "gitlab") && strings.Contains(repo, "/") && !strings.HasPrefix(repo, "/") && !strings.HasSuffix(repo, "/")
}

const defaultHealthTimeout = 5 * time.Minute

// Default is the configuration before the file, environment and flags.
func Default() Config {
	c := Config{Listen: ":8080", State: "kubeplan.db", WorkDir: "kubeplan-work", CheckoutCacheMB: 2048, Workers: 2, JobTimeout: metav1.Duration{Duration: 15 * time.Minute}, JobAttempts: 3, RetryBackoff: metav1.Duration{Duration: 10 * time.Second}, Retention: metav1.Duration{Duration: 7 * 24 * time.Hour}, ForgeTimeout: metav1.Duration{Duration: 30 * time.Second}, ShutdownGrace: metav1.Duration{Duration: 20 * time.Second}, PlanDrafts: true}
	c.Apply.HealthTimeout = metav1.Duration{Duration: defaultHealthTimeout}
	c.Render.Timeout, c.Render.MemoryMB = metav1.Duration{Duration: 2 * time.Minute}, 1024
	c.Drift.Interval = metav1.Duration{Duration: 30 * time.Minute}
	c.Drift.Issues = true
	return c
}

// Load reads the optional YAML file over the defaults, then the environment.
func Load(path string, getenv func(string) string) (Config, error) {
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			return c, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	c.GitHub.Token = getenv("KUBEPLAN_GITHUB_TOKEN")
	c.GitHub.WebhookSecret = getenv("KUBEPLAN_GITHUB_WEBHOOK_SECRET")
	if pem := getenv("KUBEPLAN_GITHUB_PRIVATE_KEY"); pem != "" {
		c.GitHub.PrivateKey = []byte(pem)
	}
	c.GitLab.Token = getenv("KUBEPLAN_GITLAB_TOKEN")
	c.GitLab.WebhookSecret = getenv("KUBEPLAN_GITLAB_WEBHOOK_SECRET")
	if v := getenv("KUBEPLAN_DRIFT_SLACK_WEBHOOK_URL"); v != "" {
		c.Drift.SlackWebhookURL = v
	}
	c.UI.GitHub.ClientSecret = getenv("KUBEPLAN_UI_GITHUB_CLIENT_SECRET")
	c.UI.GitLab.Secret = getenv("KUBEPLAN_UI_GITLAB_SECRET")
	if v := getenv("KUBEPLAN_UI_SESSION_KEY"); v != "" {
		c.UI.SessionKey = []byte(v)
	}
	if v := getenv("KUBEPLAN_LISTEN"); v != "" {
		c.Listen = v
	}
	if v := getenv("KUBEPLAN_STATE"); v != "" {
		c.State = v
	}
	if v := getenv("KUBEPLAN_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("KUBEPLAN_WORKERS: %w", err)
		}
		c.Workers = n
	}
	return c, nil
}

// Runtime is what serve derives from a valid configuration, once, at start.
type Runtime struct {
	// GitHubPrivateKey is the App's key: KUBEPLAN_GITHUB_PRIVATE_KEY, or github.privateKeyFile read.
	GitHubPrivateKey []byte
	// Policy is the server's policy, compiled; each event only adds its repository's rules.
	Policy *policy.Policy
	// HealthTimeout is apply.healthTimeout, or half a jobTimeout shorter than its default.
	HealthTimeout time.Duration
}

// Validate checks the configuration, naming every mistake at once.
func (c Config) Validate() error {
	_, err := c.Prepare()
	return err
}

// Prepare validates the configuration, naming every mistake at once, and derives what serve
// runs with. It changes nothing in c: what it derives is in the Runtime. On error the Runtime
// still holds what could be derived (the key, when readable), so doctor checks on with it.
func (c Config) Prepare() (Runtime, error) {
	var errs []error
	rt := Runtime{GitHubPrivateKey: c.GitHub.PrivateKey, HealthTimeout: c.Apply.HealthTimeout.Duration}
	if c.GitHub.AppID != 0 && len(c.GitHub.PrivateKey) == 0 {
		if c.GitHub.PrivateKeyFile == "" {
			errs = append(errs, errors.New("github.appID is set but no private key (github.privateKeyFile or KUBEPLAN_GITHUB_PRIVATE_KEY)"))
		} else if key, err := os.ReadFile(c.GitHub.PrivateKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("github private key: %w", err))
		} else {
			rt.GitHubPrivateKey = key
		}
	}
	github := c.GitHub.AppID != 0 || c.GitHub.Token != ""
	gitlab := c.GitLab.Token != ""
	if !github && !gitlab {
		errs = append(errs, errors.New("no forge configured: set a GitHub App (github.appID) or KUBEPLAN_GITHUB_TOKEN, or KUBEPLAN_GITLAB_TOKEN"))
	}
	if github && c.GitHub.WebhookSecret == "" {
		errs = append(errs, errors.New("KUBEPLAN_GITHUB_WEBHOOK_SECRET is required: unsigned webhooks are never accepted"))
	}
	if gitlab && c.GitLab.WebhookSecret == "" {
		errs = append(errs, errors.New("KUBEPLAN_GITLAB_WEBHOOK_SECRET is required: webhooks without the token are never accepted"))
	}
	if c.JobTimeout.Duration <= 0 {
		errs = append(errs, errors.New("jobTimeout must be positive (e.g. 15m)"))
	}
	if c.ShutdownGrace.Duration < 0 {
		errs = append(errs, errors.New("shutdownGrace must not be negative (0 hands running jobs back at once)"))
	}
	if c.ForgeTimeout.Duration <= 0 {
		errs = append(errs, errors.New("forgeTimeout must be positive (e.g. 30s)"))
	}
	if len(c.Clusters) == 0 {
		errs = append(errs, errors.New("no clusters configured (clusters: [{name, kubeconfig, context}] or inCluster)"))
	}
	var names []string
	for _, t := range c.Clusters {
		names = append(names, t.Name)
	}
	if err := c.Access.Validate(names); err != nil {
		errs = append(errs, err)
	}
	if rt.HealthTimeout < 0 {
		errs = append(errs, errors.New("apply.healthTimeout must not be negative (0 skips the health wait)"))
	}
	if rt.HealthTimeout == defaultHealthTimeout && c.JobTimeout.Duration > 0 && c.JobTimeout.Duration <= defaultHealthTimeout {
		rt.HealthTimeout = c.JobTimeout.Duration / 2 // the default follows a short jobTimeout
	}
	if rt.HealthTimeout >= c.JobTimeout.Duration && c.JobTimeout.Duration > 0 {
		errs = append(errs, fmt.Errorf("apply.healthTimeout (%s) must be shorter than jobTimeout (%s)", rt.HealthTimeout, c.JobTimeout.Duration))
	}
	if c.Retention.Duration < time.Hour {
		errs = append(errs, fmt.Errorf("retention must be at least 1h (have %s): forges redeliver webhooks for days", c.Retention.Duration))
	}
	if c.History.Retention.Duration < 0 {
		errs = append(errs, fmt.Errorf("history.retention must not be negative (have %s; 0 keeps the history for ever)", c.History.Retention.Duration))
	}
	if c.Render.Timeout.Duration <= 0 || c.Render.MemoryMB < 64 {
		errs = append(errs, fmt.Errorf("render.timeout must be positive and render.memoryMB at least 64 (have %s, %d)", c.Render.Timeout.Duration, c.Render.MemoryMB))
	}
	errs = append(errs, c.validateDrift(github, gitlab)...)
	errs = append(errs, c.UI.validate()...)
	// Bad server rules stop the server at start, naming the rule, not the first pull request.
	pol, err := policy.Compile(c.Policy, nil)
	if err != nil {
		errs = append(errs, err)
	}
	rt.Policy = pol
	if len(errs) == 0 {
		return rt, nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return rt, errors.New("configuration: " + strings.Join(msgs, "; "))
}

// Registry builds the cluster registry.
func (c *Config) Registry() (*cluster.Registry, error) {
	return cluster.NewRegistry(c.DefaultCluster, c.Clusters...)
}

// Allowed reports whether a repository may use this server.
func (c *Config) Allowed(repo string) bool {
	if len(c.Repositories) == 0 {
		return true
	}
	for _, pattern := range c.Repositories {
		if pattern == repo || strings.HasSuffix(pattern, "*") && strings.HasPrefix(repo, strings.TrimSuffix(pattern, "*")) {
			return true
		}
	}
	return false
}

// validateDrift checks the drift settings; messages never quote the Slack URL (a secret).
func (c Config) validateDrift(github, gitlab bool) []error {
	var errs []error
	if c.Drift.Interval.Duration < 0 {
		errs = append(errs, errors.New("drift.interval must not be negative (0 turns scheduled drift checks off)"))
	}
	for _, entry := range c.Drift.Repositories {
		forge, repo, ok := c.Drift.split(entry)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("drift.repositories: %q is not github:owner/name or gitlab:group/project", entry))
		case forge == "github" && !github || forge == "gitlab" && !gitlab:
			errs = append(errs, fmt.Errorf("drift.repositories: %q is on %s, which this server is not configured for", entry, forge))
		case !c.Allowed(repo):
			errs = append(errs, fmt.Errorf("drift.repositories: %q is not in the repositories allowlist", entry))
		}
	}
	if u := c.Drift.SlackWebhookURL; u != "" {
		if parsed, err := url.Parse(u); err != nil || parsed.Host == "" || parsed.Scheme != "https" && parsed.Scheme != "http" {
			errs = append(errs, errors.New("drift.slackWebhookURL (or KUBEPLAN_DRIFT_SLACK_WEBHOOK_URL) is not an http(s) URL"))
		}
	}
	return errs
}

// validate checks the sign-in settings; messages never quote a secret.
func (u UI) validate() []error {
	var errs []error
	if u.SessionLifetime.Duration < 0 {
		errs = append(errs, errors.New("ui.sessionLifetime must not be negative (0 is the default, 8h)"))
	}
	if !u.SignIn() {
		return errs
	}
	if p, err := url.Parse(u.PublicURL); err != nil || p.Host == "" || p.Scheme != "https" && p.Scheme != "http" || p.RawQuery != "" || p.Fragment != "" {
		errs = append(errs, errors.New("ui.publicURL must be the page's absolute http(s) address (https://kubeplan.example.com) when sign-in is configured: the forges redirect back to it"))
	}
	if u.GitHub.ClientID != "" && u.GitHub.ClientSecret == "" {
		errs = append(errs, errors.New("ui.github.clientID is set but KUBEPLAN_UI_GITHUB_CLIENT_SECRET is not"))
	}
	if u.GitLab.ApplicationID != "" && u.GitLab.Secret == "" {
		errs = append(errs, errors.New("ui.gitlab.applicationID is set but KUBEPLAN_UI_GITLAB_SECRET is not"))
	}
	if len(u.SessionKey) < 32 {
		errs = append(errs, errors.New("KUBEPLAN_UI_SESSION_KEY must be at least 32 bytes when sign-in is configured (e.g. openssl rand -base64 48), the same on every replica"))
	}
	return errs
}

// DriftRepository is one repository drift.repositories names.
type DriftRepository struct {
	// Forge is "github" or "gitlab"; Name is owner/name or group/project.
	Forge, Name string
}

// DriftRepositories are the repositories whose default branches are checked for drift
// (Validate has checked each entry).
func (c *Config) DriftRepositories() []DriftRepository {
	var out []DriftRepository
	for _, entry := range c.Drift.Repositories {
		if forge, repo, ok := c.Drift.split(entry); ok {
			out = append(out, DriftRepository{Forge: forge, Name: repo})
		}
	}
	return out
}
