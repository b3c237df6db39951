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
