package doctor_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/doctor"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
)

var kube *kubetest.Cluster

func TestMain(m *testing.M) { os.Exit(kubetest.RunWithCluster(m, "dev", &kube)) }

const token = "doctor-token"

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// base is a configuration whose every check passes, given the emulator's forge set up for it.
func base(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.State = filepath.Join(t.TempDir(), "state.db")
	cfg.Clusters = []cluster.Target{{Name: "dev", Kubeconfig: kube.Kubeconfig, Context: "dev"}}
	return cfg
}

// run runs the checks and returns the output as `kubeplan doctor` prints it.
func run(t *testing.T, cfg config.Config, o doctor.Options) (string, bool) {
	t.Helper()
	rs := doctor.Run(context.Background(), cfg, o)
	var lines []string
	for _, r := range rs {
		lines = append(lines, r.String())
	}
	out := strings.Join(lines, "\n")
	t.Logf("doctor:\n%s", out)
	return out, doctor.Failed(rs)
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line says %q", w)
		}
	}
}

func gone(t *testing.T) string {
	raw, err := os.ReadFile(kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gone.kubeconfig")
	out := strings.Replace(string(raw), strings.TrimSuffix(kube.Config.Host, "/"), "https://127.0.0.1:1", 1)
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDoctorGitHubApp(t *testing.T) {
	emu := forgeemu.New(token, "kubeplan[bot]")
	defer emu.Close()
	key := emu.EnableGitHubApp(4242)
	emu.CreateRepo("acme/web", map[string]string{"a": "b"})
	emu.CreateRepo("acme/api", map[string]string{"a": "b"})
	cfg := base(t)
	cfg.GitHub.BaseURL, cfg.GitHub.AppID, cfg.GitHub.PrivateKey, cfg.GitHub.WebhookSecret = emu.GitHubAPI(), 4242, key, "s3cret"
	cfg.Repositories = []string{"acme/web", "acme/api", "acme/*"}

	out, failed := run(t, cfg, doctor.Options{})
	if failed {
		t.Fatalf("a complete App fails:\n%s", out)
	}
	wantLines(t, out, "ok    github: App 4242 (kubeplan) authenticates", "grants every permission and event kubeplan needs (acme/web)",
		"ok    github: the webhook secret is set", "ok    cluster dev: reachable", "ok    state:")

	// The owner installed the App on acme/web only, and has not accepted statuses: write nor the
	// review events.
	emu.InstallApp("acme/web")
	emu.SetInstallationGrants(map[string]string{"contents": "read", "metadata": "read", "pull_requests": "write", "issues": "write",
		"statuses": "read", "members": "read"}, []string{"pull_request", "issue_comment"})
	out, failed = run(t, cfg, doctor.Options{})
	if !failed {
		t.Fatal("doctor passes an installation lacking a permission")
	}
	wantLines(t, out, "FAIL  github: App kubeplan has no access to acme/api", "installations/new and give it acme/api",
		"lacks permissions statuses: write (has read); events pull_request_review", "settings/apps/kubeplan/permissions")

	// A wrong key says so, and nothing else about GitHub is guessed.
	emu.EnableGitHubApp(4242) // the App got a new key; kubeplan still has the old one
	out, _ = run(t, cfg, doctor.Options{})
	wantLines(t, out, "FAIL  github: App 4242 does not authenticate")
}

func TestDoctorGitHubToken(t *testing.T) {
	emu := forgeemu.New(token, "kubeplan-bot")
	defer emu.Close()
	emu.TokenScopes = []string{"repo"}
	emu.CreateRepo("acme/web", map[string]string{"a": "b"})
	emu.CreateRepo("acme/api", map[string]string{"a": "b"})
	emu.CreateRepo("acme/docs", map[string]string{"a": "b"})
	emu.SetPermission("acme/docs", "kubeplan-bot", forge.PermRead)
	emu.RevokeAccess("acme/api")
	cfg := base(t)
	cfg.GitHub.BaseURL, cfg.GitHub.Token = emu.GitHubAPI(), token
	cfg.Repositories = []string{"acme/web", "acme/api", "acme/docs"}

	out, failed := run(t, cfg, doctor.Options{})
	if !failed {
		t.Fatal("doctor passes")
	}
	wantLines(t, out, "ok    github: the token authenticates as kubeplan-bot", "FAIL  github: the token lacks the scope read:org",
		"FAIL  github: the token has no access to acme/api; fix: give kubeplan-bot write access to acme/api",
		"FAIL  github: kubeplan-bot has only read access to acme/docs", "ok    github: kubeplan-bot may write to acme/web",
		"FAIL  github: the webhook secret is not set", "FAIL  config: KUBEPLAN_GITHUB_WEBHOOK_SECRET is required")

	cfg.GitHub.Token = "wrong"
	out, _ = run(t, cfg, doctor.Options{})
	wantLines(t, out, "FAIL  github: the token does not authenticate")
}

func TestDoctorGitLab(t *testing.T) {
	emu := forgeemu.New(token, "kubeplan-bot")
	defer emu.Close()
	emu.CreateRepo("acme/web", map[string]string{"a": "b"})
	emu.CreateRepo("acme/api", map[string]string{"a": "b"})
	emu.CreateRepo("acme/docs", map[string]string{"a": "b"})
	emu.SetPermission("acme/docs", "kubeplan-bot", forge.PermRead)
	emu.RevokeAccess("acme/api")
	cfg := base(t)
	cfg.GitLab.BaseURL, cfg.GitLab.Token, cfg.GitLab.WebhookSecret = emu.GitLabAPI(), token, "s"
	cfg.Repositories = []string{"acme/web", "acme/api", "acme/docs"}

	out, _ := run(t, cfg, doctor.Options{})
	wantLines(t, out, "ok    gitlab: the token authenticates as kubeplan-bot", "ok    gitlab: the token has the scope api",
		"ok    gitlab: kubeplan-bot is Developer of acme/web", "FAIL  gitlab: the token has no access to acme/api",
		"FAIL  gitlab: kubeplan-bot is Guest of acme/docs: kubeplan needs Developer")

	emu.TokenScopes = []string{"read_api"}
	out, _ = run(t, cfg, doctor.Options{})
	wantLines(t, out, "FAIL  gitlab: the token lacks the scope api (has read_api)")
}

// Clusters: one that does not answer, an identity that may not delete, and a namespaced install
// granted in one of its two namespaces; each is named with what is missing.
func TestDoctorClusters(t *testing.T) {
	ctx := context.Background()
	id := suffix()
	user, nsA, nsB := "kubeplan-"+id, "team-a-"+id, "team-b-"+id
	if _, err := kube.Kubectl(ctx, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: no-delete-`+id+`}
rules:
- {apiGroups: ["*"], resources: ["*"], verbs: [get, list, create, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: no-delete-`+id+`}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: no-delete-`+id+`}
subjects: [{kind: User, name: `+user+`, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: v1
kind: Namespace
metadata: {name: `+nsA+`}
---
apiVersion: v1
kind: Namespace
metadata: {name: `+nsB+`}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: kubeplan, namespace: `+nsA+`}
rules:
- {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: kubeplan, namespace: `+nsA+`}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: kubeplan}
subjects: [{kind: User, name: ns-`+user+`, apiGroup: rbac.authorization.k8s.io}]
`, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	limited, err := kube.UserKubeconfig(user)
	if err != nil {
		t.Fatal(err)
	}
	namespaced, err := kube.UserKubeconfig("ns-" + user)
	if err != nil {
		t.Fatal(err)
	}
	cfg := base(t) // no forge: only the clusters (and the store) are checked
	cfg.Clusters = []cluster.Target{{Name: "dev", Kubeconfig: kube.Kubeconfig, Context: "dev"}, {Name: "gone", Kubeconfig: gone(t), Context: "dev"},
		{Name: "limited", Kubeconfig: limited, Context: "dev"}}
	rs := doctor.Run(ctx, cfg, doctor.Options{})
	var lines []string
	for _, r := range rs {
		if strings.HasPrefix(r.Subject, "cluster ") {
			lines = append(lines, r.String())
		}
	}
	out := strings.Join(lines, "\n")
	t.Logf("doctor:\n%s", out)
	wantLines(t, out, "ok    cluster dev: reachable (v", "FAIL  cluster gone: unreachable",
		`FAIL  cluster limited: "`+user+`" may not delete every kind cluster-wide; fix: grant them to kubeplan's identity in a ClusterRole`)
	if strings.Contains(out, "may not get") || strings.Contains(out, "may not create") {
		t.Error("doctor names verbs the identity has")
	}

	cfg.Clusters = []cluster.Target{{Name: "teams", Kubeconfig: namespaced, Context: "dev"}}
	rs = doctor.Run(ctx, cfg, doctor.Options{Namespaces: []string{nsA, nsB}})
	out = rs[len(rs)-2].String() // the cluster's line comes before the state's
	t.Logf("doctor: %s", out)
	if !strings.Contains(out, "FAIL  cluster teams: \"ns-"+user+"\" may not get, create, patch configmaps in namespace "+nsB+
		"; get, list, create, patch, delete every kind in namespace "+nsB) ||
		strings.Contains(out, "namespace "+nsA) || !strings.Contains(out, "in a Role in each namespace") {
		t.Errorf("namespaced install: %s", out)
	}
	rs = doctor.Run(ctx, cfg, doctor.Options{Namespaces: []string{nsA}})
	if out := rs[len(rs)-2].String(); !strings.HasPrefix(out, "ok    cluster teams: reachable") || !strings.Contains(out, "in namespaces "+nsA) {
		t.Errorf("namespaced install, its own namespace: %s", out)
	}
}

func TestDoctorState(t *testing.T) {
	cfg := base(t)
	cfg.Clusters = nil
	for _, tc := range []struct{ state, want string }{
		{cfg.State, "ok    state: the SQLite file " + cfg.State + " will be created"},
		{filepath.Join(t.TempDir(), "missing", "dir", "state.db"), "FAIL  state: the SQLite file"},
		{"postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", "FAIL  state: create state store schema in postgres://nobody@127.0.0.1:1/none"},
	} {
		cfg.State = tc.state
		rs := doctor.Run(context.Background(), cfg, doctor.Options{})
		if got := rs[len(rs)-1].String(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %s, want %s…", tc.state, got, tc.want)
		}
	}
}
