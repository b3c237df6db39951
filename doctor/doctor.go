// Package doctor checks that an installed kubeplan can do its work, and says in one line each
// what is wrong and how to fix it: the forge credentials authenticate and carry every permission
// and event kubeplan needs on the allowed repositories, the webhook secrets are set, every
// registered cluster answers and lets kubeplan's identity do what kubeplan does there, and the
// state store opens and takes writes. `kubeplan doctor` prints the checks; `kubeplan serve` logs
// them at start.
package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge/forgehttp"
)

// Result is one check's outcome: what was checked, and, when it failed, what is wrong and how
// to fix it.
type Result struct {
	// Subject is what the check is about: "github", "gitlab", "cluster prod", "state".
	Subject string
	OK      bool
	// Message says what was found (OK) or what is wrong.
	Message string
	// Fix says what to do about a failure.
	Fix string
}

func (r Result) String() string {
	if r.OK {
		return fmt.Sprintf("ok    %s: %s", r.Subject, r.Message)
	}
	return fmt.Sprintf("FAIL  %s: %s; fix: %s", r.Subject, r.Message, r.Fix)
}

func ok(subject, format string, args ...any) Result {
	return Result{Subject: subject, OK: true, Message: fmt.Sprintf(format, args...)}
}

func fail(subject, fix, format string, args ...any) Result {
	return Result{Subject: subject, Message: fmt.Sprintf(format, args...), Fix: fix}
}

// Options tune the checks.
type Options struct {
	// Namespaces, when set, are the only namespaces kubeplan's cluster identity is granted (a
	// namespaced install): access is checked in each of them instead of cluster-wide.
	Namespaces []string
	// Kinds are the kinds ("deployments.apps", "configmaps") whose access is checked; empty:
	// every kind ("*"), as kubeplan applies whatever a project holds.
	Kinds []string
	// Timeout bounds each check; default 15s.
	Timeout time.Duration
}

// Run runs every check that the configuration calls for, in a stable order.
func Run(ctx context.Context, cfg config.Config, o Options) []Result {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	var out []Result
	// Prepare reads the App key and names every configuration mistake; the checks go on with
	// what there is, so one run shows every problem.
	rt, err := cfg.Prepare()
	if err != nil {
		out = append(out, fail("config", "correct the configuration file or environment (docs/configuration.md)", "%s", strings.TrimPrefix(err.Error(), "configuration: ")))
	}
	cfg.GitHub.PrivateKey = rt.GitHubPrivateKey // this copy only: the checks below sign with it
	httpOpts := forgehttp.Options{Timeout: o.Timeout, Log: nil}
	if cfg.GitHub.AppID != 0 || cfg.GitHub.Token != "" {
		out = append(out, secretSet("github", cfg.GitHub.WebhookSecret, "KUBEPLAN_GITHUB_WEBHOOK_SECRET"))
		cctx, cancel := context.WithTimeout(ctx, 4*o.Timeout)
		out = append(out, checkGitHub(cctx, cfg, httpOpts)...)
		cancel()
	}
	if cfg.GitLab.Token != "" {
		out = append(out, secretSet("gitlab", cfg.GitLab.WebhookSecret, "KUBEPLAN_GITLAB_WEBHOOK_SECRET"))
		cctx, cancel := context.WithTimeout(ctx, 4*o.Timeout)
		out = append(out, checkGitLab(cctx, cfg, httpOpts)...)
		cancel()
	}
	for _, t := range cfg.Clusters {
		cctx, cancel := context.WithTimeout(ctx, 2*o.Timeout)
		out = append(out, checkCluster(cctx, t, o))
		cancel()
	}
	cctx, cancel := context.WithTimeout(ctx, o.Timeout)
	out = append(out, checkState(cctx, cfg.State))
	cancel()
	return out
}

// Failed says whether any check failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if !r.OK {
			return true
		}
	}
	return false
}

func secretSet(forge, secret, env string) Result {
	if secret == "" {
		return fail(forge, "set "+env+" to the secret the webhook was given", "the webhook secret is not set: every webhook would be refused")
	}
	return ok(forge, "the webhook secret is set (%s)", env)
}

// allowlist splits the repository allowlist into exact repositories and the owners of the
// patterns ("acme/*" → acme).
func allowlist(patterns []string) (repos, owners []string) {
	seen := map[string]bool{}
	for _, p := range patterns {
		if !strings.HasSuffix(p, "*") {
			repos = append(repos, p)
			continue
		}
		owner, _, ok := strings.Cut(p, "/")
		if ok && owner != "" && !strings.Contains(owner, "*") && !seen[owner] {
			seen[owner] = true
			owners = append(owners, owner)
		}
	}
	return repos, owners
}
