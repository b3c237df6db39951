package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/internal/pgtest"
)

func openAt(t *testing.T, path string, clock *time.Time) *Queue {
	t.Helper()
	q, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	q.now = func() time.Time { return *clock }
	t.Cleanup(func() { q.Close() })
	return q
}

func enqueue(t *testing.T, q *Queue, delivery, key, kind, payload string, coalesce bool) bool {
	t.Helper()
	ok, err := q.Enqueue(context.Background(), delivery, Job{Key: key, Kind: kind, Payload: []byte(payload)}, coalesce)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func claim(t *testing.T, q *Queue) *Job {
	t.Helper()
	j, err := q.Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestRedeliveredEventIsQueuedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1000, 0)
		q := open(&clock)
		if !enqueue(t, q, "d-1", "gh:o/r#1", "plan", "a", false) {
			t.Fatal("first delivery refused")
		}
		if enqueue(t, q, "d-1", "gh:o/r#1", "plan", "a", false) {
			t.Fatal("redelivery accepted")
		}
		if n, _ := q.Pending(context.Background()); n != 1 {
			t.Fatalf("%d jobs pending, want 1", n)
		}
	})
}

func TestQuickPushesCoalesceIntoTheNewest(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1000, 0)
		q := open(&clock)
		for _, head := range []string{"sha1", "sha2", "sha3", "sha4"} {
			enqueue(t, q, "push-"+head, "gh:o/r#1", "plan", head, true)
		}
		j := claim(t, q)
		if string(j.Payload) != "sha4" {
			t.Fatalf("planned %s, want the newest head sha4", j.Payload)
		}
		if next := claim(t, q); next != nil {
			t.Fatalf("a second plan job was queued: %s", next.Payload)
		}
	})
}

func TestWorkForOnePullRequestRunsInOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1000, 0)
		q := open(&clock)
		enqueue(t, q, "1", "gh:o/r#1", "plan", "first", false)
		enqueue(t, q, "2", "gh:o/r#1", "command", "second", false)
		enqueue(t, q, "3", "gh:o/r#2", "plan", "other-pr", false)

		first := claim(t, q)
		if string(first.Payload) != "first" {
			t.Fatalf("claimed %s first", first.Payload)
		}
		// PR 1 is busy: the next claim serves PR 2, not PR 1's second job.
		if other := claim(t, q); other == nil || string(other.Payload) != "other-pr" {
			t.Fatalf("claimed %v, want PR 2's job", other)
		}
		if none := claim(t, q); none != nil {
			t.Fatalf("claimed %s while PR 1's first job runs", none.Payload)
		}
		if err := q.Done(context.Background(), first.ID, nil); err != nil {
			t.Fatal(err)
		}
		if second := claim(t, q); second == nil || string(second.Payload) != "second" {
			t.Fatalf("claimed %v, want PR 1's second job", second)
		}
	})
}

func TestQueuedAndRunningWorkSurvivesARestart(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1000, 0)
		q := open(&clock)
		enqueue(t, q, "1", "gh:o/r#1", "plan", "interrupted", false)
		enqueue(t, q, "2", "gh:o/r#2", "plan", "waiting", false)
		if j := claim(t, q); string(j.Payload) != "interrupted" {
			t.Fatal("unexpected job")
		}
		q.Close() // the process dies while the job runs

		q2 := open(&clock)
		if j := claim(t, q2); j == nil || string(j.Payload) != "waiting" {
			t.Fatalf("after restart claimed %v, want the waiting job", j)
		}
		// Once the dead process's lease runs out, its job runs again.
		clock = clock.Add(q2.Lease + time.Second)
		j := claim(t, q2)
		if j == nil || string(j.Payload) != "interrupted" || j.Attempts != 2 {
			t.Fatalf("after the lease claimed %+v, want the interrupted job on attempt 2", j)
		}
	})
}

func TestStuckJobTimesOutAndIsGivenUpAfterMaxAttempts(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1000, 0)
		q := open(&clock)
		q.MaxAttempts = 2
		enqueue(t, q, "1", "k", "plan", "stuck", false)
		for attempt := 1; attempt <= 2; attempt++ {
			j := claim(t, q)
			if j == nil || j.Attempts != attempt || j.GiveUp {
				t.Fatalf("attempt %d: claimed %+v", attempt, j)
			}
			clock = clock.Add(q.Lease + time.Second)
		}
		j := claim(t, q)
		if j == nil || !j.GiveUp {
			t.Fatalf("a job stuck %d times was claimed to run again: %+v", q.MaxAttempts, j)
		}
		if err := q.Done(context.Background(), j.ID, j.GiveUpReason()); err != nil {
			t.Fatal(err)
		}
		if j := claim(t, q); j != nil {
			t.Fatalf("a given-up job was claimed again: %+v", j)
		}
		if state, msg := jobState(t, q, j.ID); state != "failed" || msg != "kubeplan stopped while working on this 2 times; giving up" {
			t.Fatalf("state %s error %q", state, msg)
		}
	})
}

func jobState(t *testing.T, q *Queue, id int64) (state, msg string) {
	t.Helper()
	if err := q.db.QueryRow(`SELECT state, error FROM jobs WHERE id = $1`, id).Scan(&state, &msg); err != nil {
		t.Fatal(err)
	}
	return state, msg
}

// A pull request whose content kills kubeplan (out of memory, a crash in a library) is worked
// on jobAttempts times, whatever the restarts in between: then it is handed to the worker
// once more only to be reported, and recorded failed with the reason. Should kubeplan stop
// even while reporting it, it is failed without running again. The next pull request's work
// is not held up by it.
func TestJobThatKeepsKillingTheProcessIsGivenUp(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		for _, reportAlsoDies := range []bool{false, true} {
			t.Run(fmt.Sprintf("report also dies=%v", reportAlsoDies), func(t *testing.T) {
				clock := time.Unix(1000, 0)
				q := open(&clock)
				key := fmt.Sprintf("gh:o/r#%v", reportAlsoDies)
				enqueue(t, q, "crash-"+key, key, "plan", "crashes the process", false)
				// restart is what a new process does at start: SQLite requeues the jobs left
				// running; with PostgreSQL the dead process's lease has to run out.
				restart := func() *Queue {
					q.Close()
					q = open(&clock)
					q.MaxAttempts = 3
					if _, err := q.RecoverInterrupted(context.Background()); err != nil {
						t.Fatal(err)
					}
					clock = clock.Add(q.Lease + time.Second)
					return q
				}
				q = restart()
				for attempt := 1; attempt <= 3; attempt++ {
					j := claim(t, q)
					if j == nil || j.Attempts != attempt || j.GiveUp {
						t.Fatalf("attempt %d: claimed %+v", attempt, j)
					}
					q = restart() // the job killed the process
				}
				j := claim(t, q)
				if j == nil || !j.GiveUp {
					t.Fatalf("after 3 crashes claimed %+v, want the job handed over only to be given up", j)
				}
				want := "kubeplan stopped while working on this 3 times; giving up"
				if got := j.GiveUpReason().Error(); got != want {
					t.Fatalf("reason %q, want %q", got, want)
				}
				if reportAlsoDies {
					q = restart()
				} else if err := q.Done(context.Background(), j.ID, j.GiveUpReason()); err != nil {
					t.Fatal(err)
				}
				enqueue(t, q, "next-"+key, key, "plan", "next push", false)
				next := claim(t, q)
				if next == nil || string(next.Payload) != "next push" || next.GiveUp {
					t.Fatalf("claimed %+v, want the next push's job (the crashing one must not run again)", next)
				}
				if state, msg := jobState(t, q, j.ID); state != "failed" || msg != want {
					t.Fatalf("crashing job: state %s error %q, want failed %q", state, msg, want)
				}
				if err := q.Done(context.Background(), next.ID, nil); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// A new push never joins a job that is only waiting to be given up: it gets a job of its own
// and runs.
func TestNewWorkDoesNotCoalesceIntoAGivenUpJob(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1000, 0)
		q := open(&clock)
		q.MaxAttempts = 1
		enqueue(t, q, "a1", "a", "command", "a1", false)
		enqueue(t, q, "a2", "a", "command", "a2", false)
		enqueue(t, q, "1", "k", "plan", "crashes", true)
		a1 := claim(t, q)
		if j := claim(t, q); j == nil || string(j.Payload) != "crashes" {
			t.Fatalf("claimed %+v", j)
		}
		if err := q.Done(context.Background(), a1.ID, nil); err != nil {
			t.Fatal(err)
		}
		// The process working on "crashes" died; once its lease runs out the next claim puts
		// it back in the queue, used up, and takes a2.
		clock = clock.Add(q.Lease + time.Second)
		if j := claim(t, q); j == nil || string(j.Payload) != "a2" {
			t.Fatalf("claimed %+v, want a2", j)
		}
		enqueue(t, q, "2", "k", "plan", "fixed", true)
		var payloads []string
		for j := claim(t, q); j != nil; j = claim(t, q) {
			payloads = append(payloads, fmt.Sprintf("%s giveUp=%v", j.Payload, j.GiveUp))
			var reason error
			if j.GiveUp {
				reason = j.GiveUpReason()
			}
			if err := q.Done(context.Background(), j.ID, reason); err != nil {
				t.Fatal(err)
			}
		}
		if want := []string{"crashes giveUp=true", "fixed giveUp=false"}; !slices.Equal(payloads, want) {
			t.Fatalf("ran %q, want %q", payloads, want)
		}
	})
}

func TestFailedJobIsRetriedWithBackoffThenRecorded(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clock := time.Unix(1000, 0)
		q := open(&clock)
		q.MaxAttempts, q.RetryBackoff = 3, 10*time.Second
		enqueue(t, q, "1", "k", "plan", "x", false)
		for attempt, wait := range []time.Duration{10 * time.Second, 20 * time.Second, 0} {
			j := claim(t, q)
			if j == nil || j.Attempts != attempt+1 {
				t.Fatalf("attempt %d: claimed %+v", attempt+1, j)
			}
			if err := q.Done(context.Background(), j.ID, errors.New("forge answered 502")); err != nil {
				t.Fatal(err)
			}
			if wait == 0 {
				break
			}
			clock = clock.Add(wait - time.Second)
			if early := claim(t, q); early != nil {
				t.Fatalf("retried %s before its backoff", wait-time.Second)
			}
			clock = clock.Add(time.Second)
		}
		if n, _ := q.Pending(context.Background()); n != 0 {
			t.Fatalf("%d pending after the last attempt", n)
		}
		var state, msg string
		if err := q.db.QueryRow(`SELECT state, error FROM jobs`).Scan(&state, &msg); err != nil || state != "failed" || msg != "forge answered 502" {
			t.Fatalf("state %s error %q %v", state, msg, err)
		}
	})
}

// Several replicas share one PostgreSQL store: every job runs once, and never beside another
// job of the same pull request, however the replicas' claims interleave.
func TestReplicasSharingAStoreRunEachJobOnceAndEachPullRequestInOrder(t *testing.T) {
	dsn := pgtest.Database(t)
	clock := time.Unix(1000, 0)
	replicas := []*Queue{openAt(t, dsn, &clock), openAt(t, dsn, &clock), openAt(t, dsn, &clock)}
	const prs, jobsPerPR = 5, 8
	for n := 0; n < prs; n++ {
		for k := 0; k < jobsPerPR; k++ {
			enqueue(t, replicas[0], fmt.Sprintf("d-%d-%d", n, k), fmt.Sprintf("gh:o/r#%d", n), "command", fmt.Sprint(k), false)
		}
	}
	var (
		mu       sync.Mutex
		running  = map[string]bool{}     // pull requests with a job running now
		order    = map[string][]string{} // payloads as run, per pull request
		finished int
		wg       sync.WaitGroup
	)
	allDone := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return finished == prs*jobsPerPR
	}
	deadline := time.Now().Add(time.Minute)
	for _, q := range replicas {
		for worker := 0; worker < 3; worker++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !allDone() && time.Now().Before(deadline) {
					j, err := q.Claim(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					if j == nil {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					mu.Lock()
					if running[j.Key] {
						t.Errorf("two jobs of %s run at once", j.Key)
					}
					running[j.Key] = true
					order[j.Key] = append(order[j.Key], string(j.Payload))
					mu.Unlock()
					time.Sleep(time.Millisecond) // the work
					mu.Lock()
					running[j.Key] = false
					mu.Unlock()
					if err := q.Done(context.Background(), j.ID, nil); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					finished++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	want := []string{"0", "1", "2", "3", "4", "5", "6", "7"}
	for n := 0; n < prs; n++ {
		key := fmt.Sprintf("gh:o/r#%d", n)
		if !slices.Equal(order[key], want) {
			t.Errorf("%s ran %v, want each job once, in order", key, order[key])
		}
	}
}

// A PostgreSQL server that cannot be reached is one clear error at start, and the password in
// the URL is not in it.
func TestUnreachablePostgreSQLIsAClearErrorWithoutThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://kubeplan:s3cret-pw@127.0.0.1:1/kubeplan?sslmode=disable&connect_timeout=5")
	if err == nil {
		t.Fatal("opened a store on a port where nothing listens")
	}
	msg := err.Error()
	if strings.Contains(msg, "s3cret-pw") {
		t.Fatalf("the error shows the password: %s", msg)
	}
	if !strings.Contains(msg, "create state store schema in postgres://kubeplan:xxxxx@127.0.0.1:1/kubeplan") || !strings.Contains(msg, "connect") {
		t.Fatalf("error does not say which store could not be reached: %s", msg)
	}
}

// A service running for years keeps a small queue: finished jobs and delivery ids older than
// the retention go; work still to do stays, however old.
func TestPruneForgetsOnlyOldFinishedWork(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		clock := time.Unix(1_800_000_000, 0)
		q := open(&clock)
		q.MaxAttempts = 1
		enqueue(t, q, "d-done", "gh:o/r#1", "plan", "done", false)
		enqueue(t, q, "d-failed", "gh:o/r#2", "plan", "failed", false)
		enqueue(t, q, "d-waiting", "gh:o/r#3", "command", "waiting", false)
		for _, fail := range []error{nil, errors.New("forge answered 502")} {
			if err := q.Done(ctx, claim(t, q).ID, fail); err != nil {
				t.Fatal(err)
			}
		}
		clock = clock.Add(8 * 24 * time.Hour)
		enqueue(t, q, "d-recent", "gh:o/r#4", "plan", "recent", false)
		if err := q.Done(ctx, claim(t, q).ID, nil); err != nil { // #3's waiting job
			t.Fatal(err)
		}

		jobs, deliveries, err := q.Prune(ctx, clock.Add(-7*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if jobs != 2 || deliveries != 3 {
			t.Fatalf("pruned %d jobs and %d deliveries, want the 2 old finished jobs and 3 old delivery ids", jobs, deliveries)
		}
		if j := claim(t, q); j == nil || string(j.Payload) != "recent" {
			t.Fatalf("claimed %v after pruning, want the recent job still queued", j)
		}
		var left int
		if err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs`).Scan(&left); err != nil || left != 2 {
			t.Fatalf("%d jobs left (%v), want the recent one and the one finished since", left, err)
		}
		if enqueue(t, q, "d-recent", "gh:o/r#4", "plan", "recent", false) {
			t.Fatal("a recent delivery id was forgotten: its redelivery was queued again")
		}
	})
}

// A state path whose directory holds "#" or "?" (a project folder called "team#1") opens
// that very file: the name is not cut at the URI's fragment or query.
func TestStatePathWithURICharactersOpensThatFile(t *testing.T) {
	for _, dir := range []string{"team#1", "what?", "100%", "spaces and :colons"} {
		t.Run(dir, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), dir, "state.db")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			clock := time.Unix(1000, 0)
			q := openAt(t, path, &clock)
			enqueue(t, q, "1", "gh:o/r#1", "plan", "kept", false)
			q.Close()
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the state file is not where it was asked for: %v", err)
			}
			if j := claim(t, openAt(t, path, &clock)); j == nil || string(j.Payload) != "kept" {
				t.Fatalf("reopened store claimed %v, want the queued job", j)
			}
		})
	}
}
