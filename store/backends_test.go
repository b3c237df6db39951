package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/internal/pgtest"
)

// opener opens the test's store, the same one on every call (a second call is a restart or
// another replica), reading time from clock.
type opener func(clock *time.Time) *Queue

// eachBackend runs test against an SQLite file and against a fresh PostgreSQL database: every
// behaviour of the store holds in both.
func eachBackend(t *testing.T, test func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		test(t, func(clock *time.Time) *Queue { return openAt(t, path, clock) })
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Database(t)
		test(t, func(clock *time.Time) *Queue { return openAt(t, dsn, clock) })
	})
}

// A job handed back at shutdown is claimable at once by another replica, on the same attempt,
// and a store check writes nothing that stays.
func TestReleasedJobIsClaimedAtOnceOnTheSameAttempt(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1_700_000_000, 0)
		a, b := open(&clock), open(&clock)
		a.Lease, b.Lease = time.Hour, time.Hour
		if _, err := a.Enqueue(t.Context(), "d1", Job{Key: "pr#1", Kind: "event", Payload: []byte("x")}, false); err != nil {
			t.Fatal(err)
		}
		j := claim(t, a)
		if err := a.Release(t.Context(), j.ID); err != nil {
			t.Fatal(err)
		}
		again := claim(t, b)
		if again.ID != j.ID || again.Attempts != 1 || again.GiveUp {
			t.Fatalf("claimed after release: %+v", again)
		}
		if err := b.Writable(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.Enqueue(t.Context(), "kubeplan-doctor-probe", Job{Key: "pr#2", Kind: "event", Payload: []byte("y")}, false); err != nil || !ok {
			t.Fatalf("the store check left its probe behind: %v %v", ok, err)
		}
	})
}
