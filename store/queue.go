// Package store keeps kubeplan's durable state: accepted webhook deliveries and the job queue,
// plans, locks, apply history and the audit history (a hash chain). An embedded SQLite file
// serves one replica; a PostgreSQL database serves several sharing the work. Work survives
// restarts; work for one pull request runs in order, one job at a time (across replicas too),
// and a burst of events for it coalesces into the newest.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", pure Go
)

// Job is one unit of work: what to do (Kind) for which pull request (Key), with its payload.
type Job struct {
	ID       int64
	Key      string // serialisation key, e.g. "github:org/repo#12": one running job per key
	Kind     string // e.g. "plan", "command"
	Payload  []byte
	Attempts int
	Created  time.Time
	// GiveUp says the job's attempts are used up without one of them finishing: kubeplan
	// stopped (crashed, was killed, ran past its lease) every time it worked on it. The worker
	// must not run it again, only report it (GiveUpError) and record it failed: a pull request
	// that crashes the process cannot make it crash for ever.
	GiveUp bool
}

// GiveUpError is the outcome of a job whose attempts were used up by stops.
type GiveUpError struct {
	// Stops is how many attempts kubeplan started and never finished.
	Stops int
}

func (e *GiveUpError) Error() string {
	return fmt.Sprintf("kubeplan stopped while working on this %d times; giving up", e.Stops)
}

// GiveUpReason is the error a given-up job is recorded with.
func (j *Job) GiveUpReason() error { return &GiveUpError{Stops: j.Attempts - 1} }

// Queue is the job queue, in SQLite or PostgreSQL. Queries are written once, in the SQL both
// understand, with $N parameters.
type Queue struct {
	db *sql.DB
	// shared is true for PostgreSQL: other replicas may be using the same store right now.
	shared bool
	// Lease is how long a claimed job may run before it is considered stuck and reclaimed.
	Lease time.Duration
	// MaxAttempts bounds retries of a job that keeps getting stuck or failing.
	MaxAttempts int
	// RetryBackoff is the wait before a failed job's second attempt; it doubles after that.
	RetryBackoff time.Duration
	now          func() time.Time
}

// Open opens the state store, creating its tables if needed: a PostgreSQL database when
// location is a postgres:// or postgresql:// URL, otherwise the SQLite file at that path.
func Open(ctx context.Context, location string) (*Queue, error) {
	if IsPostgres(location) {
		return openPostgres(ctx, location)
	}
	// The path goes into an SQLite URI: escaped, a "#" or "?" in a directory name stays part of
	// the path instead of silently opening another file.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: location}).EscapedPath()+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", location, err)
	}
	// One connection: SQLite serialises writers anyway, and this avoids SQLITE_BUSY entirely.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schemaFor(false)); err != nil {
		db.Close()
		return nil, fmt.Errorf("create state store schema in %s: %w", location, err)
	}
	return newQueue(db, false), nil
}

// IsPostgres reports whether a state store location names a PostgreSQL database.
func IsPostgres(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

func openPostgres(ctx context.Context, dsn string) (*Queue, error) {
	where := redact(dsn)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", where, err)
	}
	db.SetMaxOpenConns(8)
	// Replicas starting together would race to create the tables: one at a time.
	tx, err := db.BeginTx(ctx, nil)
	if err == nil {
		if _, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLockKey); err == nil {
			if _, err = tx.ExecContext(ctx, schemaFor(true)); err == nil {
				err = tx.Commit()
			}
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create state store schema in %s: %w", where, err)
	}
	return newQueue(db, true), nil
}

// redact drops the password from a database URL, for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable PostgreSQL URL)"
	}
	return u.Redacted()
}

// Advisory lock keys (PostgreSQL): arbitrary constants, the same in every replica.
const (
	schemaLockKey = 0x6b75626570 // "kubep"
	claimLockKey  = 0x6b75626571
)

func newQueue(db *sql.DB, shared bool) *Queue {
	return &Queue{db: db, shared: shared, Lease: 10 * time.Minute, MaxAttempts: 3, RetryBackoff: 10 * time.Second, now: time.Now}
}

// The tables, written once: the dialects differ only in the types that SERIAL_ID, MILLIS (Unix
// milliseconds) and BYTES stand for (see schemaFor).
const queueTables = `
CREATE TABLE IF NOT EXISTS deliveries (
	id          TEXT PRIMARY KEY,
	received_at MILLIS NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
	id          SERIAL_ID,
	key         TEXT NOT NULL,
	kind        TEXT NOT NULL,
	payload     BYTES NOT NULL,
	state       TEXT NOT NULL DEFAULT 'queued', -- queued | running | done | failed
	attempts    INTEGER NOT NULL DEFAULT 0,
	lease_until MILLIS NOT NULL DEFAULT 0,
	not_before  MILLIS NOT NULL DEFAULT 0, -- a retried job waits until then
	error       TEXT NOT NULL DEFAULT '',
	created_at  MILLIS NOT NULL,
	updated_at  MILLIS NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key, state);
`

// Close closes the database.
func (q *Queue) Close() error { return q.db.Close() }

// Enqueue records a delivery and queues its job, in one transaction. A delivery seen before
// is not queued again (accepted is false). When coalesce is true and a job of the same key and
// kind is still waiting, that job takes the new payload instead of a second job being queued:
// ten quick pushes plan the newest head once.
func (q *Queue) Enqueue(ctx context.Context, delivery string, job Job, coalesce bool) (accepted bool, err error) {
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("enqueue %s: %w", job.Key, err)
	}
	defer tx.Rollback()
	now := q.now().UnixMilli()
	if delivery != "" {
		res, err := tx.ExecContext(ctx, `INSERT INTO deliveries(id, received_at) VALUES($1, $2) ON CONFLICT(id) DO NOTHING`, delivery, now)
		if err != nil {
			return false, fmt.Errorf("record delivery %s: %w", delivery, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return false, nil
		}
	}
	if coalesce {
		// state = 'queued' again outside: a job another replica claims meanwhile keeps its payload.
		// A job whose attempts are used up is only reported now: new work never joins it.
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET payload = $1, updated_at = $2 WHERE state = 'queued' AND attempts < $5 AND id = (
			SELECT id FROM jobs WHERE key = $3 AND kind = $4 AND state = 'queued' ORDER BY id DESC LIMIT 1)`,
			job.Payload, now, job.Key, job.Kind, q.MaxAttempts)
		if err != nil {
			return false, fmt.Errorf("coalesce %s: %w", job.Key, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return true, tx.Commit()
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO jobs(key, kind, payload, created_at, updated_at) VALUES($1, $2, $3, $4, $5)`,
		job.Key, job.Kind, job.Payload, now, now); err != nil {
		return false, fmt.Errorf("enqueue %s: %w", job.Key, err)
	}
	return true, tx.Commit()
}

// ErrEmpty means no job can run now.
var ErrEmpty = errors.New("no job ready")

// Claim takes the oldest queued job whose key has no job running, and leases it. Jobs whose
// lease ran out (a crash, a stuck plan) are first returned to the queue. A job whose attempts
// are used up comes back once more with GiveUp set, to be reported and recorded failed, never
// run; should even that stop, it is failed here.
func (q *Queue) Claim(ctx context.Context) (*Job, error) {
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim job: %w", err)
	}
	defer tx.Rollback()
	if q.shared {
		// Replicas claim one at a time, or two could each start a job of the same pull request.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, claimLockKey); err != nil {
			return nil, fmt.Errorf("claim job: %w", err)
		}
	}
	now := q.now().UnixMilli()
	if _, err := requeueStopped(ctx, tx, q.MaxAttempts, now, `lease_until < $2`); err != nil {
		return nil, fmt.Errorf("reclaim stuck jobs: %w", err)
	}
	var j Job
	var created int64
	err = tx.QueryRowContext(ctx, `SELECT id, key, kind, payload, attempts, created_at FROM jobs j
		WHERE state = 'queued' AND not_before <= $1 AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.key = j.key AND r.state = 'running')
		AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.key = j.key AND e.state = 'queued' AND e.id < j.id)
		ORDER BY id LIMIT 1`, now).Scan(&j.ID, &j.Key, &j.Kind, &j.Payload, &j.Attempts, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tx.Commit() // commit the reclaim
	}
	if err != nil {
		return nil, fmt.Errorf("claim job: %w", err)
	}
	j.GiveUp = j.Attempts >= q.MaxAttempts
	j.Attempts++
	j.Created = time.UnixMilli(created)
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'running', attempts = $1, lease_until = $2, updated_at = $3 WHERE id = $4`,
		j.Attempts, now+q.Lease.Milliseconds(), now, j.ID); err != nil {
		return nil, fmt.Errorf("claim job %d: %w", j.ID, err)
	}
	return &j, tx.Commit()
}

// requeueStopped returns running jobs that match where (a condition on $2, the time now) to
// the queue, keeping their attempts; one that was already being given up (attempts past max,
// see Claim) is failed instead, in GiveUpError's words. $1 is max. It returns how many.
func requeueStopped(ctx context.Context, ex execer, max int, now int64, where string) (int64, error) {
	res, err := ex.ExecContext(ctx, `UPDATE jobs SET
		state = CASE WHEN attempts > $1 THEN 'failed' ELSE 'queued' END,
		error = CASE WHEN attempts > $1 THEN 'kubeplan stopped while working on this ' || (attempts - 1) || ' times; giving up' ELSE error END,
		updated_at = $2
		WHERE state = 'running' AND `+where, max, now)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Done records a claimed job's outcome. A job that failed goes back to the queue after a
// backoff (the work is idempotent: plans and comments are redone in place) until MaxAttempts,
// then stays failed with its error.
func (q *Queue) Done(ctx context.Context, id int64, jobErr error) error {
	now := q.now()
	var err error
	if jobErr == nil {
		_, err = q.db.ExecContext(ctx, `UPDATE jobs SET state = 'done', error = '', updated_at = $1 WHERE id = $2`, now.UnixMilli(), id)
	} else {
		var attempts int
		if err = q.db.QueryRowContext(ctx, `SELECT attempts FROM jobs WHERE id = $1`, id).Scan(&attempts); err == nil {
			state, notBefore := "failed", int64(0)
			if attempts < q.MaxAttempts {
				state, notBefore = "queued", now.Add(q.RetryBackoff<<(attempts-1)).UnixMilli()
			}
			_, err = q.db.ExecContext(ctx, `UPDATE jobs SET state = $1, error = $2, not_before = $3, updated_at = $4 WHERE id = $5`,
				state, jobErr.Error(), notBefore, now.UnixMilli(), id)
		}
	}
	if err != nil {
		return fmt.Errorf("finish job %d: %w", id, err)
	}
	return nil
}

// Release hands a claimed job back to the queue at once, its attempt not counted: kubeplan
// stopped it to shut down, not because of anything in it, so another replica (or the next
// start) takes it up without waiting for its lease to run out.
func (q *Queue) Release(ctx context.Context, id int64) error {
	if _, err := q.db.ExecContext(ctx, `UPDATE jobs SET state = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
		lease_until = 0, updated_at = $1 WHERE id = $2 AND state = 'running'`, q.now().UnixMilli(), id); err != nil {
		return fmt.Errorf("hand job %d back to the queue: %w", id, err)
	}
	return nil
}

// Pending counts jobs queued or running (for readiness and metrics).
func (q *Queue) Pending(ctx context.Context) (int, error) {
	var n int
	err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')`).Scan(&n)
	return n, err
}

// Prune forgets finished jobs and delivery ids older than before, so that the queue and the
// redelivery check stay small on a service that runs for years. Queued and running jobs stay
// whatever their age; plans, locks and apply history are not touched.
func (q *Queue) Prune(ctx context.Context, before time.Time) (jobs, deliveries int64, err error) {
	res, err := q.db.ExecContext(ctx, `DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_at < $1`, before.UnixMilli())
	if err != nil {
		return 0, 0, fmt.Errorf("prune finished jobs: %w", err)
	}
	jobs, _ = res.RowsAffected()
	if res, err = q.db.ExecContext(ctx, `DELETE FROM deliveries WHERE received_at < $1`, before.UnixMilli()); err != nil {
		return jobs, 0, fmt.Errorf("prune delivery ids: %w", err)
	}
	deliveries, _ = res.RowsAffected()
	return jobs, deliveries, nil
}

// RecoverInterrupted returns jobs left running by a previous process to the queue, keeping
// their attempts: one whose attempts are used up is then claimed only to be given up (Claim).
// Only a store one process owns (SQLite) does so: in a shared one (PostgreSQL), a running job
// may belong to a live replica, and its lease decides instead.
func (q *Queue) RecoverInterrupted(ctx context.Context) (int, error) {
	if q.shared {
		return 0, nil
	}
	n, err := requeueStopped(ctx, q.db, q.MaxAttempts, q.now().UnixMilli(), `1 = 1`)
	if err != nil {
		return 0, fmt.Errorf("recover interrupted jobs: %w", err)
	}
	return int(n), nil
}

// Writable checks that the store takes writes: it records a delivery id in a transaction it
// then rolls back, so nothing stays (kubeplan doctor).
func (q *Queue) Writable(ctx context.Context) error {
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries(id, received_at) VALUES($1, $2) ON CONFLICT(id) DO NOTHING`,
		"kubeplan-doctor-probe", q.now().UnixMilli()); err != nil {
		return fmt.Errorf("state store does not take writes: %w", err)
	}
	return nil
}
