package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DriftRevert is the apply trigger of a revert of drift (a scheduled check re-applying git).
const DriftRevert = "drift_revert"

// DriftApply is the apply trigger of `/apply` on a drift issue (someone re-applying git).
const DriftApply = "drift_apply"

const driftTables = `
CREATE TABLE IF NOT EXISTS drift (
	repo        TEXT NOT NULL, -- forge:repo
	project     TEXT NOT NULL,
	cluster     TEXT NOT NULL,
	holder      TEXT NOT NULL DEFAULT '', -- the replica running the check now
	lease_until MILLIS NOT NULL DEFAULT 0,
	checked_at  MILLIS NOT NULL DEFAULT 0,
	sha         TEXT NOT NULL DEFAULT '', -- the default branch's commit checked
	signature   TEXT NOT NULL DEFAULT '', -- of the last check's drift; '' none
	notified    TEXT NOT NULL DEFAULT '', -- the signature last notified
	changed     INTEGER NOT NULL DEFAULT 0,
	missing     INTEGER NOT NULL DEFAULT 0,
	extra       INTEGER NOT NULL DEFAULT 0,
	failed      INTEGER NOT NULL DEFAULT 0,
	report      TEXT NOT NULL DEFAULT '', -- the last report as JSON (drift.JSON)
	error       TEXT NOT NULL DEFAULT '', -- why the last check failed, if it did
	PRIMARY KEY (repo, project, cluster)
);
`

// DriftRecord is the last drift check of one project on one cluster of a repository's
// default branch.
type DriftRecord struct {
	Repo string // forge:repo
	Target
	SHA string
	// Signature is the last check's drift signature ("" no drift); Notified is the one last
	// notified, so that the same drift seen again notifies nobody.
	Signature, Notified             string
	Changed, Missing, Extra, Failed int
	// Report is the check's report as JSON; Error why the check failed (Report then stays
	// the last good one).
	Report    string
	Error     string
	CheckedAt time.Time
}

// TakeDriftCheck leases the drift check of a project × cluster to holder for lease, when its
// last check is at least every old and no other replica holds a live lease on it. Replicas
// racing for one check: one update wins, the others see a fresh lease and get false.
func (s *State) TakeDriftCheck(ctx context.Context, repo string, t Target, holder string, every, lease time.Duration) (bool, error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO drift(repo, project, cluster) VALUES($1, $2, $3) ON CONFLICT(repo, project, cluster) DO NOTHING`,
		repo, t.Project, t.Cluster); err != nil {
		return false, fmt.Errorf("lease drift check of %s %s on %s: %w", repo, t.Project, t.Cluster, err)
	}
	now := s.now().UnixMilli()
	res, err := s.db.ExecContext(ctx, `UPDATE drift SET holder = $1, lease_until = $2
		WHERE repo = $3 AND project = $4 AND cluster = $5 AND lease_until <= $6 AND checked_at <= $7`,
		holder, now+lease.Milliseconds(), repo, t.Project, t.Cluster, now, now-every.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("lease drift check of %s %s on %s: %w", repo, t.Project, t.Cluster, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// FinishDriftCheck records a check holder ran and ends its lease. Notified is not changed
// (MarkDriftNotified does that once the notice is out).
func (s *State) FinishDriftCheck(ctx context.Context, holder string, r DriftRecord) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE drift SET holder = '', lease_until = 0, checked_at = $1, sha = $2, signature = $3,
		changed = $4, missing = $5, extra = $6, failed = $7, report = $8, error = $9
		WHERE repo = $10 AND project = $11 AND cluster = $12 AND holder = $13`,
		s.now().UnixMilli(), r.SHA, r.Signature, r.Changed, r.Missing, r.Extra, r.Failed, r.Report, r.Error,
		r.Repo, r.Project, r.Cluster, holder); err != nil {
		return fmt.Errorf("record drift check of %s %s on %s: %w", r.Repo, r.Project, r.Cluster, err)
	}
	return nil
}

// MarkDriftNotified records the signature whose drift (or its end) has been notified.
func (s *State) MarkDriftNotified(ctx context.Context, repo string, t Target, signature string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE drift SET notified = $1 WHERE repo = $2 AND project = $3 AND cluster = $4`,
		signature, repo, t.Project, t.Cluster); err != nil {
		return fmt.Errorf("record drift notice of %s %s on %s: %w", repo, t.Project, t.Cluster, err)
	}
	return nil
}

// DriftOf returns the last drift check of a project × cluster, if there was one.
func (s *State) DriftOf(ctx context.Context, repo string, t Target) (DriftRecord, bool, error) {
	all, err := s.drifts(ctx, `WHERE repo = $1 AND project = $2 AND cluster = $3`, repo, t.Project, t.Cluster)
	if err != nil || len(all) == 0 {
		return DriftRecord{}, false, err
	}
	return all[0], true, nil
}

// Drifts lists the drift checks of a repository ("" for every repository) by project, cluster.
func (s *State) Drifts(ctx context.Context, repo string) ([]DriftRecord, error) {
	return s.drifts(ctx, `WHERE $1 = '' OR repo = $1`, repo)
}

func (s *State) drifts(ctx context.Context, where string, args ...any) ([]DriftRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT repo, project, cluster, sha, signature, notified, changed, missing, extra, failed, report, error, checked_at
		FROM drift `+where+` ORDER BY repo, project, cluster`, args...)
	if err != nil {
		return nil, fmt.Errorf("read drift checks: %w", err)
	}
	defer rows.Close()
	var out []DriftRecord
	for rows.Next() {
		var r DriftRecord
		var at int64
		if err := rows.Scan(&r.Repo, &r.Project, &r.Cluster, &r.SHA, &r.Signature, &r.Notified, &r.Changed, &r.Missing, &r.Extra, &r.Failed,
			&r.Report, &r.Error, &at); err != nil {
			return nil, fmt.Errorf("read drift checks: %w", err)
		}
		if at > 0 {
			r.CheckedAt = time.UnixMilli(at)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read drift checks: %w", err)
	}
	return out, nil
}
