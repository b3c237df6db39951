package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is what kubeplan remembers about pull requests beyond the queue: the latest plan of
// each target, project × cluster locks, apply history and the commits approvals were given
// on. It shares the queue's database: one SQLite file, or one PostgreSQL database for all
// replicas.
type State struct {
	db *sql.DB
	// shared is true for PostgreSQL (see Queue).
	shared bool
	now    func() time.Time
}

// State returns the state kept in the queue's database.
func (q *Queue) State() *State { return &State{db: q.db, shared: q.shared, now: q.now} }

const stateTables = `
CREATE TABLE IF NOT EXISTS plans (
	pr         TEXT NOT NULL, -- forge:repo#number
	project    TEXT NOT NULL,
	cluster    TEXT NOT NULL,
	sha        TEXT NOT NULL,
	hash       TEXT NOT NULL,
	body       BYTES NOT NULL, -- the plan as JSON (Secret values are never in it)
	planned_at MILLIS NOT NULL,
	PRIMARY KEY (pr, project, cluster)
);
CREATE TABLE IF NOT EXISTS locks (
	repo      TEXT NOT NULL, -- forge:repo
	project   TEXT NOT NULL,
	cluster   TEXT NOT NULL,
	pr        TEXT NOT NULL,
	number    INTEGER NOT NULL,
	holder    TEXT NOT NULL, -- who applied
	locked_at MILLIS NOT NULL,
	PRIMARY KEY (repo, project, cluster)
);
CREATE INDEX IF NOT EXISTS locks_pr ON locks(pr);
CREATE TABLE IF NOT EXISTS applies (
	id          SERIAL_ID,
	pr          TEXT NOT NULL,
	project     TEXT NOT NULL,
	cluster     TEXT NOT NULL,
	sha         TEXT NOT NULL,
	plan_hash   TEXT NOT NULL,
	trigger     TEXT NOT NULL, -- before_merge | on_merge
	actor       TEXT NOT NULL,
	state       TEXT NOT NULL, -- running | succeeded | failed | interrupted | refused
	summary     TEXT NOT NULL DEFAULT '',
	delivery    TEXT NOT NULL DEFAULT '', -- the webhook delivery that asked for it
	report      TEXT NOT NULL DEFAULT '', -- the result comment, kept until it is posted
	reported    INTEGER NOT NULL DEFAULT 0,
	started_at  MILLIS NOT NULL,
	finished_at MILLIS NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS applies_pr ON applies(pr, id);
CREATE TABLE IF NOT EXISTS approvals (
	pr          TEXT NOT NULL,
	reviewer    TEXT NOT NULL,
	sha         TEXT NOT NULL,
	approved_at MILLIS NOT NULL,
	PRIMARY KEY (pr, reviewer)
);
CREATE TABLE IF NOT EXISTS merge_groups (
	pr         TEXT NOT NULL,
	sha        TEXT NOT NULL, -- the merge group's head commit
	actor      TEXT NOT NULL, -- who the forge says queued it
	passed     INTEGER NOT NULL, -- 1: the plan matched the reviewed one and the policy held
	summary    TEXT NOT NULL,
	checked_at MILLIS NOT NULL,
	PRIMARY KEY (pr, sha)
);
`

// schemaFor returns every table in SQLite's types, or PostgreSQL's.
func schemaFor(postgres bool) string {
	types := strings.NewReplacer("SERIAL_ID", "INTEGER PRIMARY KEY AUTOINCREMENT", "MILLIS", "INTEGER", "BYTES", "BLOB")
	if postgres {
		types = strings.NewReplacer("SERIAL_ID", "BIGSERIAL PRIMARY KEY", "MILLIS", "BIGINT", "BYTES", "BYTEA")
	}
	return types.Replace(queueTables + stateTables + driftTables + historyTables + uiTables)
}

// Target is one project on one cluster of a pull request.
type Target struct {
	Project, Cluster string
}

// PlanRecord is the latest plan of one target of a pull request.
type PlanRecord struct {
	Target
	SHA, Hash string
	Body      []byte
	PlannedAt time.Time
}

// SavePlan records the latest plan of a target, replacing the one before.
func (s *State) SavePlan(ctx context.Context, pr string, r PlanRecord) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO plans(pr, project, cluster, sha, hash, body, planned_at) VALUES($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT(pr, project, cluster) DO UPDATE SET sha = excluded.sha, hash = excluded.hash, body = excluded.body, planned_at = excluded.planned_at`,
		pr, r.Project, r.Cluster, r.SHA, r.Hash, r.Body, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("save plan of %s %s on %s: %w", pr, r.Project, r.Cluster, err)
	}
	return nil
}

// Plans returns the latest plan of every target of a pull request, by project then cluster.
func (s *State) Plans(ctx context.Context, pr string) ([]PlanRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT project, cluster, sha, hash, body, planned_at FROM plans WHERE pr = $1 ORDER BY project, cluster`, pr)
	if err != nil {
		return nil, fmt.Errorf("read plans of %s: %w", pr, err)
	}
	defer rows.Close()
	var out []PlanRecord
	for rows.Next() {
		var r PlanRecord
		var at int64
		if err := rows.Scan(&r.Project, &r.Cluster, &r.SHA, &r.Hash, &r.Body, &at); err != nil {
			return nil, fmt.Errorf("read plans of %s: %w", pr, err)
		}
		r.PlannedAt = time.UnixMilli(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeletePlans forgets a pull request's plans except those of keep (targets no longer affected).
func (s *State) DeletePlans(ctx context.Context, pr string, keep []Target) error {
	existing, err := s.Plans(ctx, pr)
	if err != nil {
		return err
	}
	kept := map[Target]bool{}
	for _, t := range keep {
		kept[t] = true
	}
	for _, r := range existing {
		if kept[r.Target] {
			continue
		}
		if _, err := s.db.ExecContext(ctx, `DELETE FROM plans WHERE pr = $1 AND project = $2 AND cluster = $3`, pr, r.Project, r.Cluster); err != nil {
			return fmt.Errorf("forget plan of %s %s on %s: %w", pr, r.Project, r.Cluster, err)
		}
	}
	return nil
}

// Lock is a project × cluster of a repository held by a pull request.
type Lock struct {
	Repo string // forge:repo
	Target
	PR       string // forge:repo#number
	Number   int
	Holder   string // who applied
	LockedAt time.Time
}

// Acquire takes the lock of a project × cluster for a pull request. When another pull request
// holds it, acquired is false and held says who; taking a lock the pull request already holds
// succeeds and keeps the first holder. Replicas racing for one lock: one insert wins.
func (s *State) Acquire(ctx context.Context, l Lock) (held Lock, acquired bool, err error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO locks(repo, project, cluster, pr, number, holder, locked_at) VALUES($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT(repo, project, cluster) DO NOTHING`,
		l.Repo, l.Project, l.Cluster, l.PR, l.Number, l.Holder, s.now().UnixMilli()); err != nil {
		return Lock{}, false, fmt.Errorf("lock %s %s on %s: %w", l.Repo, l.Project, l.Cluster, err)
	}
	cur, err := lockOf(ctx, s.db, l.Repo, l.Target)
	if err != nil {
		return Lock{}, false, fmt.Errorf("lock %s %s on %s: %w", l.Repo, l.Project, l.Cluster, err)
	}
	return cur, cur.PR == l.PR, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func lockOf(ctx context.Context, q queryer, repo string, t Target) (Lock, error) {
	l := Lock{Repo: repo, Target: t}
	var at int64
	err := q.QueryRowContext(ctx, `SELECT pr, number, holder, locked_at FROM locks WHERE repo = $1 AND project = $2 AND cluster = $3`,
		repo, t.Project, t.Cluster).Scan(&l.PR, &l.Number, &l.Holder, &at)
	l.LockedAt = time.UnixMilli(at)
	return l, err
}

// LockOf returns the lock of a project × cluster, if any pull request holds it.
func (s *State) LockOf(ctx context.Context, repo string, t Target) (Lock, bool, error) {
	l, err := lockOf(ctx, s.db, repo, t)
	if errors.Is(err, sql.ErrNoRows) {
		return Lock{}, false, nil
	}
	if err != nil {
		return Lock{}, false, fmt.Errorf("read lock of %s %s on %s: %w", repo, t.Project, t.Cluster, err)
	}
	return l, true, nil
}

// Locks lists the locks in a repository ("" for every repository), oldest first.
func (s *State) Locks(ctx context.Context, repo string) ([]Lock, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT repo, project, cluster, pr, number, holder, locked_at FROM locks
		WHERE $1 = '' OR repo = $1 ORDER BY locked_at, project, cluster`, repo)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	out, err := scanLocks(rows)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	return out, nil
}

func scanLocks(rows *sql.Rows) ([]Lock, error) {
	defer rows.Close()
	var out []Lock
	for rows.Next() {
		var l Lock
		var at int64
		if err := rows.Scan(&l.Repo, &l.Project, &l.Cluster, &l.PR, &l.Number, &l.Holder, &at); err != nil {
			return nil, err
		}
		l.LockedAt = time.UnixMilli(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// Unlock releases the lock of a project × cluster whoever holds it; it reports whether one was held.
func (s *State) Unlock(ctx context.Context, repo string, t Target) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM locks WHERE repo = $1 AND project = $2 AND cluster = $3`, repo, t.Project, t.Cluster)
	if err != nil {
		return false, fmt.Errorf("unlock %s %s on %s: %w", repo, t.Project, t.Cluster, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// ReleasePR releases every lock a pull request holds and returns them.
func (s *State) ReleasePR(ctx context.Context, pr string) ([]Lock, error) {
	rows, err := s.db.QueryContext(ctx, `DELETE FROM locks WHERE pr = $1 RETURNING repo, project, cluster, pr, number, holder, locked_at`, pr)
	if err != nil {
		return nil, fmt.Errorf("release locks of %s: %w", pr, err)
	}
	out, err := scanLocks(rows)
	if err != nil {
		return nil, fmt.Errorf("release locks of %s: %w", pr, err)
	}
	return out, nil
}

// Apply states.
const (
	ApplyRunning     = "running"
	ApplySucceeded   = "succeeded"
	ApplyFailed      = "failed"
	ApplyInterrupted = "interrupted"
	// ApplyRefused: a roll-out on merge that the policy did not allow; nothing was applied.
	ApplyRefused = "refused"
)

// Apply triggers (and DriftRevert).
const (
	BeforeMerge = "before_merge"
	OnMerge     = "on_merge"
)

// ApplyRecord is one apply of one target, in the history.
type ApplyRecord struct {
	ID int64
	PR string
	Target
	SHA, PlanHash string
	Trigger       string
	Actor         string
	// Delivery is the webhook delivery (the /apply comment, the merge) that asked for it: a
	// job run again for the same delivery finds what it already did.
	Delivery string
	State    string
	Summary  string
	// Report is the result comment; Reported says it is on the pull request.
	Report     string
	Reported   bool
	StartedAt  time.Time
	FinishedAt time.Time
}

// StartApply records an apply as running before it touches the cluster, so that a crash
// leaves a trace the next attempt finds (and reports) instead of applying again blindly.
func (s *State) StartApply(ctx context.Context, r ApplyRecord) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO applies(pr, project, cluster, sha, plan_hash, trigger, actor, delivery, state, started_at) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		RETURNING id`,
		r.PR, r.Project, r.Cluster, r.SHA, r.PlanHash, r.Trigger, r.Actor, r.Delivery, ApplyRunning, s.now().UnixMilli()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record apply of %s %s on %s: %w", r.PR, r.Project, r.Cluster, err)
	}
	return id, nil
}

// FinishApply records an apply's outcome and its result comment, before the comment is posted:
// a forge outage then delays the comment but does not lose it.
func (s *State) FinishApply(ctx context.Context, id int64, state, summary, report string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE applies SET state = $1, summary = $2, report = $3, finished_at = $4 WHERE id = $5`,
		state, summary, report, s.now().UnixMilli(), id); err != nil {
		return fmt.Errorf("record outcome of apply %d: %w", id, err)
	}
	return nil
}

// MarkReported records that an apply's result comment is on the pull request.
func (s *State) MarkReported(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE applies SET reported = 1 WHERE id = $1`, id); err != nil {
		return fmt.Errorf("record apply %d as reported: %w", id, err)
	}
	return nil
}

// Applies lists a pull request's applies, oldest first.
func (s *State) Applies(ctx context.Context, pr string) ([]ApplyRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, pr, project, cluster, sha, plan_hash, trigger, actor, delivery, state, summary, report, reported, started_at, finished_at
		FROM applies WHERE pr = $1 ORDER BY id`, pr)
	if err != nil {
		return nil, fmt.Errorf("read applies of %s: %w", pr, err)
	}
	defer rows.Close()
	var out []ApplyRecord
	for rows.Next() {
		var r ApplyRecord
		var started, finished int64
		if err := rows.Scan(&r.ID, &r.PR, &r.Project, &r.Cluster, &r.SHA, &r.PlanHash, &r.Trigger, &r.Actor, &r.Delivery, &r.State, &r.Summary, &r.Report, &r.Reported, &started, &finished); err != nil {
			return nil, fmt.Errorf("read applies of %s: %w", pr, err)
		}
		r.StartedAt = time.UnixMilli(started)
		if finished > 0 {
			r.FinishedAt = time.UnixMilli(finished)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Interrupted marks a pull request's applies still recorded as running as interrupted and
// returns them. Jobs of one pull request run one at a time, so a running record seen by a new
// job was left by a process that stopped mid-apply.
func (s *State) Interrupted(ctx context.Context, pr string) ([]ApplyRecord, error) {
	all, err := s.Applies(ctx, pr)
	if err != nil {
		return nil, err
	}
	var out []ApplyRecord
	for _, r := range all {
		if r.State != ApplyRunning {
			continue
		}
		if err := s.FinishApply(ctx, r.ID, ApplyInterrupted, "interrupted: kubeplan stopped during the apply", ""); err != nil {
			return nil, err
		}
		r.State = ApplyInterrupted
		out = append(out, r)
	}
	return out, nil
}

// RecordApproval remembers the head an approval was given on (GitLab's API does not say).
func (s *State) RecordApproval(ctx context.Context, pr, reviewer, sha string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO approvals(pr, reviewer, sha, approved_at) VALUES($1, $2, $3, $4)
		ON CONFLICT(pr, reviewer) DO UPDATE SET sha = excluded.sha, approved_at = excluded.approved_at`, pr, reviewer, sha, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("record approval of %s by %s: %w", pr, reviewer, err)
	}
	return nil
}

// ForgetApproval drops a withdrawn approval.
func (s *State) ForgetApproval(ctx context.Context, pr, reviewer string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM approvals WHERE pr = $1 AND reviewer = $2`, pr, reviewer); err != nil {
		return fmt.Errorf("forget approval of %s by %s: %w", pr, reviewer, err)
	}
	return nil
}

// ApprovalSHAs returns the head each reviewer's approval was recorded on.
func (s *State) ApprovalSHAs(ctx context.Context, pr string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT reviewer, sha FROM approvals WHERE pr = $1`, pr)
	if err != nil {
		return nil, fmt.Errorf("read approvals of %s: %w", pr, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var who, sha string
		if err := rows.Scan(&who, &sha); err != nil {
			return nil, fmt.Errorf("read approvals of %s: %w", pr, err)
		}
		out[who] = sha
	}
	return out, rows.Err()
}

// MergeGroupCheck is kubeplan's verdict on a merge queue's commit for a pull request.
type MergeGroupCheck struct {
	SHA     string
	Actor   string
	Passed  bool
	Summary string
}

// RecordMergeGroup remembers the verdict on a merge group's head for a pull request, replacing
// an earlier one for the same commit.
func (s *State) RecordMergeGroup(ctx context.Context, pr string, c MergeGroupCheck) error {
	passed := 0
	if c.Passed {
		passed = 1
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO merge_groups(pr, sha, actor, passed, summary, checked_at) VALUES($1, $2, $3, $4, $5, $6)
		ON CONFLICT(pr, sha) DO UPDATE SET actor = excluded.actor, passed = excluded.passed, summary = excluded.summary, checked_at = excluded.checked_at`,
		pr, c.SHA, c.Actor, passed, c.Summary, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("record merge group %s of %s: %w", c.SHA, pr, err)
	}
	return nil
}

// MergeGroup returns the verdict on a merge group's head for a pull request, if there is one.
func (s *State) MergeGroup(ctx context.Context, pr, sha string) (MergeGroupCheck, bool, error) {
	c := MergeGroupCheck{SHA: sha}
	var passed int
	err := s.db.QueryRowContext(ctx, `SELECT actor, passed, summary FROM merge_groups WHERE pr = $1 AND sha = $2`, pr, sha).Scan(&c.Actor, &passed, &c.Summary)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return MergeGroupCheck{}, false, nil
	case err != nil:
		return MergeGroupCheck{}, false, fmt.Errorf("read merge group %s of %s: %w", sha, pr, err)
	}
	c.Passed = passed == 1
	return c, true, nil
}
