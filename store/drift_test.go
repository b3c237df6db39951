package store

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Replicas racing for one drift check: exactly one runs it; nobody runs it again before the
// interval has passed; a lease whose holder died runs out.
func TestDriftCheckIsLeasedToOneReplicaPerInterval(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := t.Context()
		clock := time.Unix(1_800_000_000, 0)
		replicas := []*State{open(&clock).State(), open(&clock).State()}
		web := Target{Project: "web", Cluster: "prod"}
		const repo, every, lease = "github:acme/shop", 30 * time.Minute, 5 * time.Minute

		var won atomic.Int32
		var winner atomic.Value
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				holder := []string{"a", "b"}[i%2] + string(rune('0'+i))
				ok, err := replicas[i%2].TakeDriftCheck(ctx, repo, web, holder, every, lease)
				if err != nil {
					t.Error(err)
				}
				if ok {
					won.Add(1)
					winner.Store(holder)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d takers won the drift check; want exactly 1", won.Load())
		}
		holder := winner.Load().(string)
		rec := DriftRecord{Repo: repo, Target: web, SHA: "abc", Signature: "sig1", Changed: 1, Report: `{"project":"web"}`}
		if err := replicas[1].FinishDriftCheck(ctx, holder, rec); err != nil {
			t.Fatal(err)
		}
		if ok, err := replicas[0].TakeDriftCheck(ctx, repo, web, "a", every, lease); err != nil || ok {
			t.Fatalf("taken again before the interval passed: %v %v", ok, err)
		}
		got, found, err := replicas[0].DriftOf(ctx, repo, web)
		if err != nil || !found || got.Signature != "sig1" || got.Notified != "" || got.Changed != 1 || got.SHA != "abc" || got.Report != rec.Report || !got.CheckedAt.Equal(clock) {
			t.Fatalf("DriftOf = %+v %v %v", got, found, err)
		}
		if err := replicas[0].MarkDriftNotified(ctx, repo, web, "sig1"); err != nil {
			t.Fatal(err)
		}

		clock = clock.Add(every)
		if ok, err := replicas[0].TakeDriftCheck(ctx, repo, web, "a", every, lease); err != nil || !ok {
			t.Fatalf("not taken once the interval passed: %v %v", ok, err)
		}
		// The holder dies: nobody takes it while its lease lives, someone does after.
		if ok, _ := replicas[1].TakeDriftCheck(ctx, repo, web, "b", every, lease); ok {
			t.Fatal("taken while another replica's lease lives")
		}
		clock = clock.Add(lease + time.Millisecond)
		if ok, err := replicas[1].TakeDriftCheck(ctx, repo, web, "b", every, lease); err != nil || !ok {
			t.Fatalf("not taken after the lease ran out: %v %v", ok, err)
		}
		// The dead holder's late finish does not overwrite the new holder's check.
		if err := replicas[0].FinishDriftCheck(ctx, "a", DriftRecord{Repo: repo, Target: web, Signature: "stale"}); err != nil {
			t.Fatal(err)
		}
		all, err := replicas[1].Drifts(ctx, repo)
		if err != nil || len(all) != 1 || all[0].Signature != "sig1" || all[0].Notified != "sig1" {
			t.Fatalf("Drifts = %+v %v", all, err)
		}
	})
}
