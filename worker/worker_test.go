package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/store"
)

// queue is a real SQLite queue; attempts bounds how often a failing job runs.
func queue(t *testing.T, attempts int) *store.Queue {
	t.Helper()
	q, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	q.MaxAttempts, q.RetryBackoff = attempts, 20*time.Millisecond
	t.Cleanup(func() { q.Close() })
	return q
}

// A job that hangs is cancelled at its deadline and recorded as failed; the next job runs.
func TestStuckJobTimesOutAndTheQueueMovesOn(t *testing.T) {
	q := queue(t, 1)
	ctx := context.Background()
	_, _ = q.Enqueue(ctx, "1", store.Job{Key: "pr#1", Kind: "event", Payload: []byte("stuck")}, false)
	_, _ = q.Enqueue(ctx, "2", store.Job{Key: "pr#1", Kind: "event", Payload: []byte("next")}, false)

	var mu sync.Mutex
	var outcomes []string
	done := make(chan struct{})
	pool := &Pool{Queue: q, Workers: 2, Timeout: 200 * time.Millisecond, Poll: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handle: func(ctx context.Context, job *store.Job) error {
			if string(job.Payload) == "stuck" {
				<-ctx.Done() // hangs until the deadline
				mu.Lock()
				outcomes = append(outcomes, "stuck: "+ctx.Err().Error())
				mu.Unlock()
				return ctx.Err()
			}
			mu.Lock()
			outcomes = append(outcomes, "next ran")
			mu.Unlock()
			close(done)
			return nil
		}}
	runCtx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() { pool.Run(runCtx); close(finished) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the job after the stuck one never ran")
	}
	cancel()
	<-finished
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) != 2 || outcomes[0] != "stuck: context deadline exceeded" || outcomes[1] != "next ran" {
		t.Fatalf("outcomes %q", outcomes)
	}
	if n, _ := q.Pending(ctx); n != 0 {
		t.Fatalf("%d jobs still pending", n)
	}
}

func TestPanickingJobIsRecordedNotFatal(t *testing.T) {
	q := queue(t, 1)
	ctx := context.Background()
	_, _ = q.Enqueue(ctx, "1", store.Job{Key: "k", Kind: "event", Payload: []byte("x")}, false)
	ran := make(chan error, 1)
	pool := &Pool{Queue: q, Workers: 1, Poll: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handle: func(context.Context, *store.Job) error { defer func() { ran <- errors.New("ran") }(); panic("bug") }}
	runCtx, cancel := context.WithCancel(ctx)
	go pool.Run(runCtx)
	<-ran
	time.Sleep(50 * time.Millisecond)
	cancel()
	if n, _ := q.Pending(ctx); n != 0 {
		t.Fatalf("the panicking job is still pending (%d)", n)
	}
}

// A job that fails (a forge outage) runs again after a backoff and succeeds.
func TestFailedJobRunsAgain(t *testing.T) {
	q := queue(t, 3)
	ctx := context.Background()
	_, _ = q.Enqueue(ctx, "1", store.Job{Key: "k", Kind: "event", Payload: []byte("x")}, false)
	var mu sync.Mutex
	var attempts []int
	done := make(chan struct{})
	pool := &Pool{Queue: q, Workers: 1, Poll: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handle: func(_ context.Context, job *store.Job) error {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, job.Attempts)
			if job.Attempts == 1 {
				return errors.New("forge answered 502")
			}
			close(done)
			return nil
		}}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go pool.Run(runCtx)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the failed job was not run again")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 2 || attempts[1] != 2 {
		t.Fatalf("attempts %v", attempts)
	}
}

// A job that kills kubeplan every time (here: three restarts while it runs) is not run a
// fourth time: the worker tells the pull request (GiveUp) and records it failed.
func TestJobThatKeepsStoppingKubeplanIsReportedNotRun(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	open := func() *store.Queue {
		q, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		q.MaxAttempts = 3
		if _, err := q.RecoverInterrupted(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	q := open()
	_, _ = q.Enqueue(ctx, "1", store.Job{Key: "gh:acme/x#1", Kind: "plan", Payload: []byte("crashes")}, false)
	for i := 0; i < 3; i++ {
		if j, err := q.Claim(ctx); err != nil || j == nil {
			t.Fatalf("claim %d: %v %v", i, j, err)
		}
		q.Close() // the job killed the process
		q = open()
	}

	var logs syncBuffer
	var mu sync.Mutex
	var handled []string
	told := make(chan error, 1)
	pool := &Pool{Queue: q, Workers: 1, Poll: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Handle: func(_ context.Context, job *store.Job) error {
			mu.Lock()
			defer mu.Unlock()
			handled = append(handled, string(job.Payload))
			return nil
		},
		GiveUp: func(_ context.Context, job *store.Job, reason error) error {
			told <- reason
			return nil
		}}
	runCtx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() { pool.Run(runCtx); close(finished) }()
	var reason error
	select {
	case reason = <-told:
	case <-time.After(10 * time.Second):
		t.Fatal("the pull request was never told that kubeplan gave up")
	}
	want := "kubeplan stopped while working on this 3 times; giving up"
	if reason == nil || reason.Error() != want {
		t.Fatalf("reason %v, want %q", reason, want)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if n, _ := q.Pending(ctx); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the given-up job is still pending")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-finished
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 0 {
		t.Fatalf("the job that kills kubeplan ran a fourth time: %q", handled)
	}
	if !strings.Contains(logs.String(), "job given up") || !strings.Contains(logs.String(), "key=gh:acme/x#1") {
		t.Fatalf("the log does not say which job was given up:\n%s", logs.String())
	}
}

// syncBuffer is a log sink the workers and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// recordingQueue hands out one job and records its outcome.
type recordingQueue struct {
	mu      sync.Mutex
	job     *store.Job
	outcome chan error
}

func (q *recordingQueue) Claim(context.Context) (*store.Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.job
	q.job = nil
	return j, nil
}

func (q *recordingQueue) Done(_ context.Context, _ int64, err error) error {
	q.outcome <- err
	return nil
}

func (q *recordingQueue) Release(context.Context, int64) error { return nil }

// Whatever a job's error quotes, a credential in a URL (an archive link's token, a password in
// a base URL) is neither logged nor stored with the job.
func TestJobErrorsAreStoredAndLoggedWithoutCredentials(t *testing.T) {
	const secret = "AAAC0FFEE0TOKEN"
	q := &recordingQueue{job: &store.Job{ID: 7, Key: "gh:acme/x#1", Attempts: 1}, outcome: make(chan error, 1)}
	var logs syncBuffer
	pool := &Pool{Queue: q, Workers: 1, Poll: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Handle: func(context.Context, *store.Job) error {
			return fmt.Errorf("download acme/x@abc: Get \"https://codeload.example/acme/x/legacy.tar.gz/abc?token=%s\": EOF", secret)
		}}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { pool.Run(ctx); close(finished) }()
	var stored error
	select {
	case stored = <-q.outcome:
	case <-time.After(10 * time.Second):
		t.Fatal("the job's outcome was never recorded")
	}
	cancel()
	<-finished
	if stored == nil || strings.Contains(stored.Error(), secret) || !strings.Contains(stored.Error(), "https://codeload.example/acme/x/legacy.tar.gz/abc?token=REDACTED") {
		t.Errorf("stored error %v, want it without the token", stored)
	}
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), "job failed") {
		t.Errorf("log:\n%s\nwant the failure without the token", logs.String())
	}
}

// On shutdown no new job is claimed; a running job has the grace period to finish, and its
// outcome is recorded.
func TestShutdownLetsARunningJobFinishWithinTheGrace(t *testing.T) {
	q := queue(t, 3)
	ctx := context.Background()
	_, _ = q.Enqueue(ctx, "1", store.Job{Key: "pr#1", Kind: "event", Payload: []byte("slow")}, false)
	started, finish := make(chan struct{}), make(chan struct{})
	var jobErr error
	pool := &Pool{Queue: q, Workers: 1, Grace: time.Minute, Poll: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handle: func(jctx context.Context, job *store.Job) error {
			if string(job.Payload) != "slow" {
				t.Errorf("a job was claimed after the shutdown began: %s", job.Payload)
				return nil
			}
			close(started)
			<-finish
			jobErr = jctx.Err() // the job was not cut short
			return jobErr
		}}
	runCtx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() { pool.Run(runCtx); close(finished) }()
	<-started
	cancel() // SIGTERM
	_, _ = q.Enqueue(ctx, "2", store.Job{Key: "pr#2", Kind: "event", Payload: []byte("late")}, false)
	close(finish)
	<-finished
	if jobErr != nil {
		t.Fatalf("the running job was cancelled: %v", jobErr)
	}
	if n, _ := q.Pending(ctx); n != 1 {
		t.Fatalf("%d jobs pending, want 1 (the late one, untouched)", n)
	}
	if j, err := q.Claim(ctx); err != nil || j == nil || string(j.Payload) != "late" {
		t.Fatalf("next job: %+v %v, want the late one", j, err)
	}
}

// A job still running when the grace runs out is cancelled and handed back to the queue at once,
// its attempt not counted: the next claim (another replica, the next start) takes it up.
func TestShutdownHandsBackAJobPastTheGrace(t *testing.T) {
	q := queue(t, 3)
	q.Lease = time.Hour // handed back, not left to its lease
	ctx := context.Background()
	_, _ = q.Enqueue(ctx, "1", store.Job{Key: "pr#1", Kind: "event", Payload: []byte("hangs")}, false)
	started := make(chan struct{})
	pool := &Pool{Queue: q, Workers: 1, Grace: 50 * time.Millisecond, Poll: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handle: func(jctx context.Context, job *store.Job) error {
			close(started)
			<-jctx.Done()
			return jctx.Err()
		}}
	runCtx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() { pool.Run(runCtx); close(finished) }()
	<-started
	cancel()
	<-finished
	j, err := q.Claim(ctx)
	if err != nil || j == nil || string(j.Payload) != "hangs" || j.Attempts != 1 || j.GiveUp {
		t.Fatalf("after the shutdown the job is %+v %v; want it queued again, on its first attempt", j, err)
	}
}
