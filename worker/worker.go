// Package worker runs queued jobs: it claims them from the durable queue one at a time per
// pull request, gives each a deadline, and records the outcome.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kubeplan/kubeplan/internal/redact"
	"github.com/kubeplan/kubeplan/store"
)

// Queue is the durable queue the worker drains.
type Queue interface {
	Claim(ctx context.Context) (*store.Job, error)
	Done(ctx context.Context, id int64, jobErr error) error
	// Release hands a job kubeplan stopped to shut down back to the queue.
	Release(ctx context.Context, id int64) error
}

// Handler does one job.
type Handler func(ctx context.Context, job *store.Job) error

// Pool runs jobs with a number of goroutines.
type Pool struct {
	Queue   Queue
	Handle  Handler
	Workers int
	// Timeout bounds one job; a job past it is cancelled and recorded as failed.
	Timeout time.Duration
	// Grace is how long running jobs may go on once Run's context ends (no new job is claimed
	// then); a job still running after it is cancelled and handed back to the queue.
	Grace time.Duration
	// Poll is how often an idle worker looks for work (Wake makes it look at once).
	Poll time.Duration
	Log  *slog.Logger
	// Observe, when set, is told every finished job's error and duration (metrics).
	Observe func(err error, took time.Duration)
	// GiveUp, when set, tells the pull request that kubeplan gave up on a job whose attempts
	// were used up by stops (store.Job.GiveUp); such a job never runs Handle again.
	GiveUp func(ctx context.Context, job *store.Job, reason error) error

	wake chan struct{}
	once sync.Once
}

// Wake tells idle workers that work was queued.
func (p *Pool) Wake() {
	p.init()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Pool) init() { p.once.Do(func() { p.wake = make(chan struct{}, 1) }) }

// Run works until ctx ends, then gives running jobs Grace to finish, hands back those that do
// not, and returns.
func (p *Pool) Run(ctx context.Context) {
	p.init()
	// Jobs run under a context of their own: ctx ending stops the claiming, and only Grace
	// later the jobs.
	jobs, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		grace := time.NewTimer(p.Grace)
		defer grace.Stop()
		select {
		case <-grace.C:
			cancelJobs()
		case <-stopped:
		}
	}()
	workers := max(p.Workers, 1)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx, jobs)
		}()
	}
	wg.Wait()
	close(stopped)
}

// handBack returns a job cut short by the shutdown to the queue.
func (p *Pool) handBack(ctx context.Context, job *store.Job) {
	p.Log.Info("job handed back to the queue: shutting down", "job", job.ID, "key", job.Key)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.Queue.Release(rctx, job.ID); err != nil {
		// Its lease returns it to the queue later (or the next start does, with one store).
		p.Log.Error("hand job back to the queue", "job", job.ID, "err", err)
	}
}

func (p *Pool) loop(ctx, jobs context.Context) {
	poll := p.Poll
	if poll <= 0 {
		poll = time.Second
	}
	for ctx.Err() == nil {
		job, err := p.Queue.Claim(ctx)
		if err != nil {
			p.Log.Error("claim job", "err", err)
		}
		if job == nil {
			select {
			case <-ctx.Done():
			case <-p.wake:
			case <-time.After(poll):
			}
			continue
		}
		p.run(jobs, job)
		p.Wake() // another worker may now take this key's next job
	}
}

// run works one job under ctx, the jobs' context: it ends when the shutdown's grace runs out.
func (p *Pool) run(ctx context.Context, job *store.Job) {
	if job.GiveUp {
		p.giveUp(ctx, job)
		return
	}
	jctx := ctx
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		jctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	start := time.Now()
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("job panicked: %v", r)
			}
		}()
		return p.Handle(jctx, job)
	}()
	// The error is logged and kept in the job: a URL it quotes must not bring a credential.
	err = redact.Error(err)
	if ctx.Err() != nil {
		p.handBack(ctx, job)
		return
	}
	if p.Observe != nil {
		p.Observe(err, time.Since(start))
	}
	if err != nil {
		p.Log.Error("job failed", "job", job.ID, "key", job.Key, "attempt", job.Attempts, "err", err, "took", time.Since(start))
	} else {
		p.Log.Info("job done", "job", job.ID, "key", job.Key, "took", time.Since(start))
	}
	if derr := p.Queue.Done(context.WithoutCancel(ctx), job.ID, err); derr != nil {
		p.Log.Error("record job outcome", "job", job.ID, "err", derr)
	}
}

// giveUp reports a job whose every attempt stopped kubeplan (a crash, a kill, a hang past the
// lease), and records it failed: whatever in it stops kubeplan is not run again.
func (p *Pool) giveUp(ctx context.Context, job *store.Job) {
	reason := job.GiveUpReason()
	p.Log.Error("job given up: kubeplan stopped every time it worked on it", "job", job.ID, "key", job.Key, "kind", job.Kind,
		"attempts", job.Attempts-1, "reason", reason)
	if p.GiveUp != nil {
		jctx := ctx
		if p.Timeout > 0 {
			var cancel context.CancelFunc
			jctx, cancel = context.WithTimeout(ctx, p.Timeout)
			defer cancel()
		}
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panicked: %v", r)
				}
			}()
			return p.GiveUp(jctx, job, reason)
		}()
		if err != nil {
			p.Log.Warn("tell the pull request that kubeplan gave up", "job", job.ID, "key", job.Key, "err", err)
		}
	}
	if ctx.Err() != nil {
		p.handBack(ctx, job) // to be given up by whoever claims it next
		return
	}
	if p.Observe != nil {
		p.Observe(reason, 0)
	}
	if err := p.Queue.Done(context.WithoutCancel(ctx), job.ID, reason); err != nil {
		p.Log.Error("record job outcome", "job", job.ID, "err", err)
	}
}
