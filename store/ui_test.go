package store

import (
	"context"
	"testing"
	"time"
)

// An OAuth state is used once across replicas: the second use, on any replica, is refused
// until the state expires; expired states are forgotten.
func TestNonceUsedOnceAcrossReplicas(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1_700_000_000, 0)
		a, b := open(&clock).Nonces(), open(&clock).Nonces()
		ctx := context.Background()
		expires := clock.Add(10 * time.Minute)
		for _, c := range []struct {
			name  string
			on    *Nonces
			nonce string
			want  bool
		}{
			{"first use", a, "state-1", true},
			{"again on the same replica", a, "state-1", false},
			{"again on another replica", b, "state-1", false},
			{"another state", b, "state-2", true},
		} {
			if got, err := c.on.UseOnce(ctx, c.nonce, expires); err != nil || got != c.want {
				t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
			}
		}
		clock = expires.Add(time.Second)
		if got, err := a.UseOnce(ctx, "state-3", clock.Add(time.Minute)); err != nil || !got {
			t.Fatalf("a fresh state after expiry: %v %v", got, err)
		}
		var left int
		if err := a.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ui_nonces`).Scan(&left); err != nil || left != 1 {
			t.Errorf("expired nonces kept: %d rows (%v)", left, err)
		}
	})
}
