package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/internal/pgtest"
)

func TestLocksAreHeldByOnePullRequestUntilReleased(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		clock := time.Unix(1_800_000_000, 0)
		s := open(&clock).State()
		web := Target{Project: "web", Cluster: "prod-eu"}
		first := Lock{Repo: "github:acme/shop", Target: web, PR: "github:acme/shop#1", Number: 1, Holder: "alice"}

		got, ok, err := s.Acquire(ctx, first)
		if err != nil || !ok || got.Holder != "alice" {
			t.Fatalf("first acquire = %+v, %v, %v; want alice's lock", got, ok, err)
		}
		// The same pull request taking it again (a second /apply) keeps the first holder.
		again := first
		again.Holder = "bob"
		if got, ok, err := s.Acquire(ctx, again); err != nil || !ok || got.Holder != "alice" {
			t.Fatalf("re-acquire by the holder's PR = %+v, %v, %v", got, ok, err)
		}
		// Another pull request is told who holds it.
		other := Lock{Repo: "github:acme/shop", Target: web, PR: "github:acme/shop#2", Number: 2, Holder: "carol"}
		if got, ok, err := s.Acquire(ctx, other); err != nil || ok || got.Number != 1 || got.Holder != "alice" {
			t.Fatalf("acquire by another PR = %+v, %v, %v; want refused naming #1 and alice", got, ok, err)
		}
		// The same project in another repository, or on another cluster, is a different lock.
		for _, l := range []Lock{
			{Repo: "github:acme/other", Target: web, PR: "github:acme/other#1", Number: 1, Holder: "dan"},
			{Repo: "github:acme/shop", Target: Target{Project: "web", Cluster: "staging"}, PR: "github:acme/shop#2", Number: 2, Holder: "carol"},
		} {
			if _, ok, err := s.Acquire(ctx, l); err != nil || !ok {
				t.Fatalf("acquire %+v = %v, %v; want a separate lock", l, ok, err)
			}
		}

		// Locks survive a restart: they live in the file.
		s = open(&clock).State()
		if l, held, err := s.LockOf(ctx, "github:acme/shop", web); err != nil || !held || l.PR != first.PR {
			t.Fatalf("after reopen LockOf = %+v, %v, %v", l, held, err)
		}
		all, err := s.Locks(ctx, "github:acme/shop")
		if err != nil || len(all) != 2 {
			t.Fatalf("Locks = %+v, %v; want 2 in acme/shop", all, err)
		}

		released, err := s.ReleasePR(ctx, first.PR)
		if err != nil || len(released) != 1 || released[0].Target != web {
			t.Fatalf("ReleasePR = %+v, %v", released, err)
		}
		if _, ok, _ := s.Acquire(ctx, other); !ok {
			t.Fatal("lock not free after its PR released it")
		}
		if ok, err := s.Unlock(ctx, "github:acme/shop", web); err != nil || !ok {
			t.Fatalf("Unlock = %v, %v", ok, err)
		}
		if ok, _ := s.Unlock(ctx, "github:acme/shop", web); ok {
			t.Fatal("Unlock of a free lock reported one held")
		}
	})
}

func TestPlansAreKeptPerTargetAndReplaced(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		clock := time.Unix(1_800_000_000, 0)
		s := open(&clock).State()
		pr := "gitlab:group/shop#3"
		save := func(project, cluster, sha, hash string) {
			t.Helper()
			if err := s.SavePlan(ctx, pr, PlanRecord{Target: Target{project, cluster}, SHA: sha, Hash: hash, Body: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		save("web", "prod", "a1", "h1")
		save("web", "staging", "a1", "h2")
		save("web", "prod", "b2", "h3") // a push re-plans
		plans, err := s.Plans(ctx, pr)
		if err != nil || len(plans) != 2 || plans[0].Cluster != "prod" || plans[0].SHA != "b2" || plans[0].Hash != "h3" {
			t.Fatalf("Plans = %+v, %v", plans, err)
		}
		if err := s.DeletePlans(ctx, pr, []Target{{"web", "prod"}}); err != nil {
			t.Fatal(err)
		}
		if plans, _ := s.Plans(ctx, pr); len(plans) != 1 || plans[0].Cluster != "prod" {
			t.Fatalf("after DeletePlans = %+v", plans)
		}
	})
}

func TestApplyHistoryShowsInterruptedApplies(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		clock := time.Unix(1_800_000_000, 0)
		s := open(&clock).State()
		pr := "github:acme/shop#1"
		done, err := s.StartApply(ctx, ApplyRecord{PR: pr, Target: Target{"web", "staging"}, SHA: "a1", PlanHash: "h", Trigger: BeforeMerge, Actor: "alice", Delivery: "d-1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishApply(ctx, done, ApplySucceeded, "2 created", "### ✅ Applied"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StartApply(ctx, ApplyRecord{PR: pr, Target: Target{"web", "prod"}, SHA: "a1", PlanHash: "h", Trigger: BeforeMerge, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
		// A new job for the PR finds the apply a crash left running.
		interrupted, err := s.Interrupted(ctx, pr)
		if err != nil || len(interrupted) != 1 || interrupted[0].Cluster != "prod" {
			t.Fatalf("Interrupted = %+v, %v", interrupted, err)
		}
		if again, _ := s.Interrupted(ctx, pr); len(again) != 0 {
			t.Fatalf("interrupted applies reported twice: %+v", again)
		}
		history, err := s.Applies(ctx, pr)
		if err != nil || len(history) != 2 || history[0].State != ApplySucceeded || history[0].Summary != "2 created" || history[1].State != ApplyInterrupted {
			t.Fatalf("Applies = %+v, %v", history, err)
		}
		// The result comment waits in the history until it is posted.
		if h := history[0]; h.Delivery != "d-1" || h.Report != "### ✅ Applied" || h.Reported {
			t.Fatalf("first apply = %+v; want its delivery and unposted report", h)
		}
		if err := s.MarkReported(ctx, done); err != nil {
			t.Fatal(err)
		}
		if history, _ = s.Applies(ctx, pr); !history[0].Reported {
			t.Fatal("MarkReported did not stick")
		}
	})
}

func TestApprovalsRememberTheirCommit(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		clock := time.Unix(1_800_000_000, 0)
		s := open(&clock).State()
		pr := "gitlab:group/shop#3"
		for _, step := range []struct{ who, sha string }{{"alice", "a1"}, {"bob", "a1"}, {"alice", "b2"}} {
			if err := s.RecordApproval(ctx, pr, step.who, step.sha); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ForgetApproval(ctx, pr, "bob"); err != nil {
			t.Fatal(err)
		}
		got, err := s.ApprovalSHAs(ctx, pr)
		if err != nil || len(got) != 1 || got["alice"] != "b2" {
			t.Fatalf("ApprovalSHAs = %v, %v; want alice on b2 only", got, err)
		}
	})
}

// A merge group's verdict is kept per pull request and commit; checking the commit again
// replaces it.
func TestMergeGroupVerdictsArePerCommit(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		clock := time.Unix(1_800_000_000, 0)
		s := open(&clock).State()
		pr := "github:acme/shop#4"
		if _, found, err := s.MergeGroup(ctx, pr, "g1"); err != nil || found {
			t.Fatalf("before any check: found %v, %v", found, err)
		}
		for _, c := range []MergeGroupCheck{
			{SHA: "g1", Actor: "alice", Passed: false, Summary: "differs from the reviewed plan"},
			{SHA: "g1", Actor: "alice", Passed: true, Summary: "matches"},
			{SHA: "g2", Actor: "bob", Passed: false, Summary: "0 of 2 approvals"},
		} {
			if err := s.RecordMergeGroup(ctx, pr, c); err != nil {
				t.Fatal(err)
			}
		}
		for sha, want := range map[string]MergeGroupCheck{
			"g1": {SHA: "g1", Actor: "alice", Passed: true, Summary: "matches"},
			"g2": {SHA: "g2", Actor: "bob", Passed: false, Summary: "0 of 2 approvals"},
		} {
			if got, found, err := s.MergeGroup(ctx, pr, sha); err != nil || !found || got != want {
				t.Errorf("MergeGroup(%s) = %+v, %v, %v; want %+v", sha, got, found, err, want)
			}
		}
		if _, found, _ := s.MergeGroup(ctx, "github:acme/shop#5", "g1"); found {
			t.Error("another pull request sees #4's verdict")
		}
	})
}

// Replicas racing for one lock (two /apply comments at once, on two replicas): one wins, the
// other is told who holds it.
func TestReplicasRacingForALockLetOneWin(t *testing.T) {
	dsn := pgtest.Database(t)
	clock := time.Unix(1_800_000_000, 0)
	a, b := openAt(t, dsn, &clock).State(), openAt(t, dsn, &clock).State()
	for round := 0; round < 20; round++ {
		web := Target{Project: fmt.Sprintf("web-%d", round), Cluster: "prod"}
		results := make(chan bool, 2)
		for i, s := range []*State{a, b} {
			go func() {
				_, ok, err := s.Acquire(context.Background(), Lock{Repo: "github:acme/shop", Target: web, PR: fmt.Sprintf("github:acme/shop#%d", i+1), Number: i + 1, Holder: "someone"})
				if err != nil {
					t.Error(err)
				}
				results <- ok
			}()
		}
		if first, second := <-results, <-results; first == second {
			t.Fatalf("round %d: both replicas acquired=%v, want exactly one", round, first)
		}
	}
}
