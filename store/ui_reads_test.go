package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/history"
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
