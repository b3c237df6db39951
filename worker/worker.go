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

// Run works until ctx ends, then waits for running jobs to finish.
func (p *Pool) Run(ctx context.Context) {
	p.init()
	workers := max(p.Workers, 1)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx)
		}()
	}
	wg.Wait()
}

func (p *Pool) loop(ctx context.Context) {
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
		p.run(ctx, job)
		p.Wake() // another worker may now take this key's next job
	}
}

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
		// Shutting down: leave the job leased; after the lease it runs again.
		p.Log.Info("job interrupted by shutdown", "job", job.ID, "key", job.Key)
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
		return // shutting down: the store fails it at the next start (or when its lease ends)
	}
	if p.Observe != nil {
		p.Observe(reason, 0)
	}
	if err := p.Queue.Done(context.WithoutCancel(ctx), job.ID, reason); err != nil {
		p.Log.Error("record job outcome", "job", job.ID, "err", err)
	}
}
