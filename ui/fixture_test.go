package ui

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/store"
)

// The history the tests read: a pull request of acme/shop planned, approved and applied to
// prod-eu (one of its objects named and diffed by an attacker), drift seen and who caused it,
// a lock still held; and acme/vault, a repository some users cannot read.
const (
	shop  = "github:acme/shop"
	vault = "github:acme/vault"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

const (
	hostileName = `<script>alert(1)</script>`
	hostileDiff = "--- live\n+++ git\n@@ -1,2 +1,2 @@\n data:\n-  page: old\n+  page: </pre><script>alert(2)</script>\n"
	apiDiff     = "--- live\n+++ git\n@@ -3,3 +3,3 @@\n spec:\n-  replicas: 2\n+  replicas: 3\n   selector:\n"
)

var apiRef = plan.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "api"}

func fixtureEntries() []history.Entry {
	pr := func(e history.Entry) history.Entry {
		e.Forge, e.Repo, e.Number = "github", "acme/shop", 12
		e.URL, e.CommitURL = "https://github.example/acme/shop/pull/12", "https://github.example/acme/shop/commit/0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
		e.SHA, e.Project, e.Cluster = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567", "web", "prod-eu"
		return e
	}
	return []history.Entry{
		pr(history.Entry{At: t0, Kind: history.Plan, Actor: "carol", State: "planned", Summary: "1 to create, 1 to change",
			PlanHash: "sha256:5f1e", Objects: []history.Object{
				{Object: apiRef, Outcome: "update", Diff: apiDiff},
				{Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: hostileName}, Outcome: "create", Diff: hostileDiff},
			}}),
		pr(history.Entry{At: t0.Add(20 * time.Minute), Kind: history.Apply, Actor: "bob", State: "succeeded", Summary: "1 created, 1 configured",
			Approvals: []history.Approval{{Reviewer: "alice", SHA: "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"}}, Verdict: "allowed", PlanHash: "sha256:5f1e",
			Objects: []history.Object{
				{Object: apiRef, Outcome: "configured", Health: "Current", Diff: apiDiff},
				{Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: hostileName}, Outcome: "created", Diff: hostileDiff},
			}}),
		{At: t0.Add(2 * time.Hour), Kind: history.DriftCheck, Forge: "github", Repo: "acme/shop", Project: "web", Cluster: "prod-eu",
			Actor: "kubeplan", State: "drifted", Summary: "1 changed", SHA: "99aa",
			Objects: []history.Object{{Object: apiRef, Outcome: "changed", Diff: "-  replicas: 3\n+  replicas: 5\n",
				Causes: []string{"`.spec.replicas` changed by \"kubectl\" (Update, subresource scale) at 2026-11-30T10:55:00Z"}}}},
		{At: t0.Add(3 * time.Hour), Kind: history.Rollout, Forge: "github", Repo: "acme/vault", Number: 4, Project: "vault", Cluster: "prod-us",
			URL: "javascript:alert(3)", CommitURL: "https://github.example/acme/vault/commit/77", SHA: "77",
			Actor: "dave", State: "succeeded", Objects: []history.Object{{Object: plan.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "vault", Name: "vault-secret-store"}, Outcome: "configured"}}},
	}
}

type fixture struct {
	path    string // the SQLite file
	state   *store.State
	entries []history.Entry // as stored, with seq and hash
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	q, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	f := &fixture{path: path, state: q.State()}
	for _, e := range fixtureEntries() {
		stored, err := f.state.AppendHistory(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		f.entries = append(f.entries, stored)
	}
	for _, l := range []store.Lock{
		{Repo: shop, Target: store.Target{Project: "web", Cluster: "prod-eu"}, PR: shop + "#12", Number: 12, Holder: "bob"},
		{Repo: vault, Target: store.Target{Project: "vault", Cluster: "prod-us"}, PR: vault + "#4", Number: 4, Holder: "dave"},
	} {
		if _, _, err := f.state.Acquire(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	target := store.Target{Project: "web", Cluster: "prod-eu"}
	if ok, err := f.state.TakeDriftCheck(ctx, shop, target, "replica-1", time.Minute, time.Minute); err != nil || !ok {
		t.Fatalf("lease the drift check: %v %v", ok, err)
	}
	if err := f.state.FinishDriftCheck(ctx, "replica-1", store.DriftRecord{Repo: shop, Target: target, SHA: "99aa", Signature: "sig-1", Changed: 1}); err != nil {
		t.Fatal(err)
	}
	return f
}

// entry is the stored entry of a kind in a repository.
func (f *fixture) entry(t *testing.T, kind history.Kind, repo string) history.Entry {
	t.Helper()
	i := slices.IndexFunc(f.entries, func(e history.Entry) bool { return e.Kind == kind && history.RepoKey(e.Forge, e.Repo) == repo })
	if i < 0 {
		t.Fatalf("no %s entry of %s in the fixture", kind, repo)
	}
	return f.entries[i]
}

// reader is an Authorizer for the handler tests: one signed-in user who can read some
// repositories on the forge. (The real one, webauth, asks the forge; its tests prove that.)
type reader struct {
	login string
	repos []string
}

func (r reader) Require(next http.Handler) http.Handler { return next }

func (r reader) Readable(_ context.Context, keys []string) ([]string, error) {
	var out []string
	for _, k := range keys {
		if slices.Contains(r.repos, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (r reader) SignedIn(context.Context) (string, bool) { return r.login, true }

// serve runs the page over the fixture's store for a user.
func (f *fixture) serve(t *testing.T, auth Authorizer) *httptest.Server {
	t.Helper()
	u, err := New(Options{Store: f.state, Auth: auth, Version: "kubeplan v9.9.9-test", Log: slog.New(slog.NewTextHandler(t.Output(), nil)), Now: func() time.Time { return t0.Add(4 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	u.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
