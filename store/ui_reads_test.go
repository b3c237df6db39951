package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/plan"
)

// The web page asks the forge about every repository the state knows of: those with history,
// a lock or a drift check, each once.
func TestReposAreThoseWithHistoryLocksOrDrift(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1_700_000_000, 0)
		s := open(&clock).State()
		ctx := context.Background()
		if got, err := s.Repos(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v %v", got, err)
		}
		for _, repo := range []string{"acme/shop", "acme/shop"} {
			if _, err := s.AppendHistory(ctx, history.Entry{At: clock, Kind: history.Plan, Forge: "github", Repo: repo, Project: "web", Cluster: "prod", State: "planned"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.Acquire(ctx, Lock{Repo: "gitlab:acme/infra", Target: Target{Project: "db", Cluster: "prod"}, PR: "gitlab:acme/infra#3", Number: 3, Holder: "bob"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeDriftCheck(ctx, "github:acme/apps", Target{Project: "web", Cluster: "prod"}, "r1", time.Minute, time.Minute); err != nil {
			t.Fatal(err)
		}
		want := []string{"github:acme/apps", "github:acme/shop", "gitlab:acme/infra"}
		if got, err := s.Repos(ctx); err != nil || !slices.Equal(got, want) {
			t.Errorf("repos %v %v, want %v", got, err, want)
		}
	})
}

// The page's search finds objects by kind, namespace or name in any case, among the
// repositories asked for only, newest first, each once with how many entries touched it; % and
// _ are plain characters.
func TestSearchObjectsOfReadableRepositories(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1_700_000_000, 0)
		s := open(&clock).State()
		ctx := context.Background()
		obj := func(kind, ns, name string) history.Object {
			return history.Object{Object: plan.ObjectRef{APIVersion: "v1", Kind: kind, Namespace: ns, Name: name}, Outcome: "configured"}
		}
		for _, e := range []history.Entry{
			{Repo: "acme/shop", Cluster: "prod", Objects: []history.Object{obj("Deployment", "shop", "api"), obj("ConfigMap", "shop", "api_config")}},
			{Repo: "acme/shop", Cluster: "prod", Objects: []history.Object{obj("Deployment", "shop", "api")}},
			{Repo: "acme/shop", Cluster: "staging", Objects: []history.Object{obj("Deployment", "shop", "api")}},
			{Repo: "acme/vault", Cluster: "prod", Objects: []history.Object{obj("StatefulSet", "vault", "api-store")}},
		} {
			e.At, e.Kind, e.Forge, e.Project, e.State = clock, history.Apply, "github", "web", "succeeded"
			if _, err := s.AppendHistory(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		shop := []string{"github:acme/shop"}
		for _, tc := range []struct {
			text  string
			repos []string
			want  []ObjectMatch
		}{
			{"API", shop, []ObjectMatch{
				{Cluster: "staging", Kind: "deployment", Namespace: "shop", Name: "api", LastSeq: 3, Entries: 1},
				{Cluster: "prod", Kind: "deployment", Namespace: "shop", Name: "api", LastSeq: 2, Entries: 2},
				{Cluster: "prod", Kind: "configmap", Namespace: "shop", Name: "api_config", LastSeq: 1, Entries: 1}}},
			{"configmap", shop, []ObjectMatch{{Cluster: "prod", Kind: "configmap", Namespace: "shop", Name: "api_config", LastSeq: 1, Entries: 1}}},
			{"shop/api_", shop, []ObjectMatch{{Cluster: "prod", Kind: "configmap", Namespace: "shop", Name: "api_config", LastSeq: 1, Entries: 1}}},
			{"%", shop, nil},
			{"api-store", shop, nil},
			{"api-store", []string{"github:acme/shop", "github:acme/vault"}, []ObjectMatch{{Cluster: "prod", Kind: "statefulset", Namespace: "vault", Name: "api-store", LastSeq: 4, Entries: 1}}},
			{"api", nil, nil},
		} {
			got, err := s.SearchObjects(ctx, tc.repos, tc.text, 10)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("search %q in %v: %+v %v, want %+v", tc.text, tc.repos, got, err, tc.want)
			}
		}
	})
}
