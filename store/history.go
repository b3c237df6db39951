package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/history"
)

// The audit history: one row per entry, its filterable fields in columns and the entry itself
// as canonical JSON (what its hash covers); one row per object it touched, for the per-object
// timeline; and the chain's head, one row, that every append updates in its transaction.
// history_head serialises appends across replicas (the chain never forks) and remembers the
// newest entry, so deleting entries from the end shows; pruned_* record what retention
// removed from the start.
const historyTables = `
CREATE TABLE IF NOT EXISTS history (
	seq       BIGINT PRIMARY KEY,
	at        MILLIS NOT NULL,
	kind      TEXT NOT NULL,
	repo      TEXT NOT NULL, -- forge:repo
	project   TEXT NOT NULL,
	cluster   TEXT NOT NULL,
	body      TEXT NOT NULL, -- the entry as canonical JSON
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_at ON history(at);
CREATE INDEX IF NOT EXISTS history_repo ON history(repo, seq);
CREATE INDEX IF NOT EXISTS history_target ON history(project, cluster, seq);
CREATE TABLE IF NOT EXISTS history_objects (
	seq       BIGINT NOT NULL,
	kind      TEXT NOT NULL, -- lower case: "deployment" finds Deployment
	namespace TEXT NOT NULL,
	name      TEXT NOT NULL,
	api_version TEXT NOT NULL,
	PRIMARY KEY (kind, name, namespace, seq, api_version)
);
CREATE INDEX IF NOT EXISTS history_objects_seq ON history_objects(seq);
CREATE TABLE IF NOT EXISTS history_head (
	id          INTEGER PRIMARY KEY,
	seq         BIGINT NOT NULL, -- the newest entry; 0 none yet
	hash        TEXT NOT NULL,
	pruned_seq  BIGINT NOT NULL DEFAULT 0, -- entries up to this one were pruned by retention
	pruned_hash TEXT NOT NULL DEFAULT '', -- the last pruned entry's hash: the kept chain's anchor
	pruned_at   MILLIS NOT NULL DEFAULT 0
);
INSERT INTO history_head(id, seq, hash) VALUES(1, 0, '') ON CONFLICT(id) DO NOTHING;
`

// Reading limits: a reader that asks for no limit gets DefaultHistoryLimit entries, one that
// asks for more than MaxHistoryLimit gets that many.
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
)

// AppendHistory adds an entry to the end of the chain: it sets Seq, At (now, if zero),
// PrevHash and Hash, stores the entry and returns it as stored. Appends from every replica
// take turns on the chain's head row, so two entries never follow the same one.
func (s *State) AppendHistory(ctx context.Context, e history.Entry) (history.Entry, error) {
	if e.At.IsZero() {
		e.At = s.now()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return history.Entry{}, fmt.Errorf("append %s entry of %s to the history: %w", e.Kind, e.Repo, err)
	}
	defer tx.Rollback()
	// Writing first takes the write lock at once (SQLite) or the head row's lock (PostgreSQL):
	// the next append waits here until this one commits, then reads the new head.
	if err := tx.QueryRowContext(ctx, `UPDATE history_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash`).Scan(&e.Seq, &e.PrevHash); err != nil {
		return history.Entry{}, fmt.Errorf("append %s entry of %s to the history: take the chain's head: %w", e.Kind, e.Repo, err)
	}
	e = e.Canonical()
	e.Hash = e.ComputeHash()
	body, err := json.Marshal(e)
	if err != nil {
		return history.Entry{}, fmt.Errorf("append %s entry of %s to the history: %w", e.Kind, e.Repo, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO history(seq, at, kind, repo, project, cluster, body, prev_hash, hash) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.Seq, e.At.UnixMilli(), indexed(string(e.Kind)), indexed(history.RepoKey(e.Forge, e.Repo)), indexed(e.Project), indexed(e.Cluster), string(body), e.PrevHash, e.Hash); err != nil {
		return history.Entry{}, fmt.Errorf("append history entry %d (%s of %s): %w", e.Seq, e.Kind, e.Repo, err)
	}
	for _, o := range e.Objects {
		r := o.Object
		if _, err := tx.ExecContext(ctx, `INSERT INTO history_objects(seq, kind, namespace, name, api_version) VALUES($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
			e.Seq, indexed(strings.ToLower(r.Kind)), indexed(r.Namespace), indexed(r.Name), indexed(r.APIVersion)); err != nil {
			return history.Entry{}, fmt.Errorf("index %s in history entry %d: %w", r, e.Seq, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE history_head SET hash = $1 WHERE id = 1`, e.Hash); err != nil {
		return history.Entry{}, fmt.Errorf("append history entry %d: move the chain's head: %w", e.Seq, err)
	}
	if err := tx.Commit(); err != nil {
		return history.Entry{}, fmt.Errorf("append history entry %d (%s of %s): %w", e.Seq, e.Kind, e.Repo, err)
	}
	return e, nil
}

// History returns the entries f selects, newest first.
func (s *State) History(ctx context.Context, f history.Filter) ([]history.Entry, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		if s, ok := v.(string); ok {
			v = indexed(s)
		}
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Repos != nil {
		if len(f.Repos) == 0 {
			return nil, nil // allowed to read no repository: nothing
		}
		in := make([]string, len(f.Repos))
		for i, r := range f.Repos {
			in[i] = arg(r)
		}
		where = append(where, "repo IN ("+strings.Join(in, ", ")+")")
	}
	if f.Project != "" {
		where = append(where, "project = "+arg(f.Project))
	}
	if f.Cluster != "" {
		where = append(where, "cluster = "+arg(f.Cluster))
	}
	if len(f.Kinds) > 0 {
		in := make([]string, len(f.Kinds))
		for i, k := range f.Kinds {
			in[i] = arg(string(k))
		}
		where = append(where, "kind IN ("+strings.Join(in, ", ")+")")
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(f.Since.UnixMilli()))
	}
	if f.Before > 0 {
		where = append(where, "seq < "+arg(f.Before))
	}
	if o := f.Object; o != nil {
		cond := "kind = " + arg(strings.ToLower(o.Kind)) + " AND namespace = " + arg(o.Namespace) + " AND name = " + arg(o.Name)
		if o.APIVersion != "" {
			cond += " AND api_version = " + arg(o.APIVersion)
		}
		where = append(where, "seq IN (SELECT seq FROM history_objects WHERE "+cond+")")
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultHistoryLimit
	case limit > MaxHistoryLimit:
		limit = MaxHistoryLimit
	}
	q := `SELECT seq, body FROM history`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT " + arg(limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read the history: %w", err)
	}
	defer rows.Close()
	var out []history.Entry
	for rows.Next() {
		var seq int64
		var body string
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, fmt.Errorf("read the history: %w", err)
		}
		e, err := decodeEntry(seq, body)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the history: %w", err)
	}
	return out, nil
}

func decodeEntry(seq int64, body string) (history.Entry, error) {
	var e history.Entry
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return history.Entry{}, fmt.Errorf("read history entry %d: %w", seq, err)
	}
	return e, nil
}

// HistoryEntry returns one entry, if it is there.
func (s *State) HistoryEntry(ctx context.Context, seq int64) (history.Entry, bool, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM history WHERE seq = $1`, seq).Scan(&body)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return history.Entry{}, false, nil
	case err != nil:
		return history.Entry{}, false, fmt.Errorf("read history entry %d: %w", seq, err)
	}
	e, err := decodeEntry(seq, body)
	return e, err == nil, err
}

// VerifyResult is what a walk of the whole chain found.
type VerifyResult struct {
	// Checked counts the entries that fit, oldest first, up to Break.
	Checked int
	// HeadSeq and HeadHash are the newest entry as the last append recorded it.
	HeadSeq  int64
	HeadHash string
	// PrunedThrough is the last entry retention removed (0: none ever), on PrunedAt; the walk
	// starts after it, from its hash.
	PrunedThrough int64
	PrunedAt      time.Time
	// Break is the first entry that does not fit; nil when the chain holds.
	Break *history.Break
}

// OK reports whether the chain holds.
func (r VerifyResult) OK() bool { return r.Break == nil }

// verifyPage is how many entries a walk reads at a time: bounded memory on a long history.
const verifyPage = 500

// VerifyHistory walks the whole chain in Seq order, recomputing every hash, and checks that
// each row's columns (what filters see) and object index say what its entry says. It reads
// one snapshot, so appends meanwhile do not confuse it.
func (s *State) VerifyHistory(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	opts := &sql.TxOptions{ReadOnly: true}
	if s.shared {
		opts.Isolation = sql.LevelRepeatableRead
	} else {
		opts = nil
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return res, fmt.Errorf("verify the history: %w", err)
	}
	defer tx.Rollback()
	var prunedHash string
	var prunedAt int64
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash, pruned_seq, pruned_hash, pruned_at FROM history_head WHERE id = 1`).
		Scan(&res.HeadSeq, &res.HeadHash, &res.PrunedThrough, &prunedHash, &prunedAt); err != nil {
		return res, fmt.Errorf("verify the history: read the chain's head: %w", err)
	}
	if prunedAt > 0 {
		res.PrunedAt = time.UnixMilli(prunedAt).UTC()
	}
	v := history.NewVerifier(res.PrunedThrough+1, prunedHash)
	after := int64(-1 << 62)
	for {
		page, err := readVerifyPage(ctx, tx, after)
		if err != nil {
			return res, err
		}
		for _, r := range page {
			if b := r.check(); b != nil {
				res.Break = b
				res.Checked = v.Checked
				return res, nil
			}
			if b := v.Check(r.entry); b != nil {
				res.Break = b
				res.Checked = v.Checked
				return res, nil
			}
		}
		if len(page) < verifyPage {
			break
		}
		after = page[len(page)-1].seq
	}
	res.Break = v.End(res.HeadSeq, res.HeadHash)
	res.Checked = v.Checked
	return res, nil
}

// storedEntry is one history row as a walk sees it.
type storedEntry struct {
	seq                                      int64
	at                                       int64
	kind, repo, project, cluster, prev, hash string
	entry                                    history.Entry
	decodeErr                                error
	objects                                  map[string]int
}

// indexed is a value as an indexed column holds it: PostgreSQL's TEXT takes no NUL, which a
// project or object name from an attacker's manifest may hold (the body keeps it, escaped).
func indexed(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

func objectKey(kind, namespace, name, apiVersion string) string {
	return strings.ToLower(kind) + "\x00" + namespace + "\x00" + name + "\x00" + apiVersion
}

// check compares a row's columns and object index with its entry: a row edited to hide from
// a filter or a timeline is as changed as one whose body was edited.
func (r *storedEntry) check() *history.Break {
	changed := func(what string) *history.Break {
		return &history.Break{Seq: r.seq, Reason: history.Changed, Detail: what}
	}
	e := r.entry
	switch {
	case r.decodeErr != nil:
		return changed("its stored entry does not decode: " + r.decodeErr.Error())
	case e.Seq != r.seq:
		return changed(fmt.Sprintf("its stored entry says it is entry %d", e.Seq))
	case r.hash != e.Hash || r.prev != e.PrevHash:
		return changed("its hash columns differ from its stored entry")
	case r.at != e.At.UnixMilli() || r.kind != indexed(string(e.Kind)) || r.repo != indexed(history.RepoKey(e.Forge, e.Repo)) ||
		r.project != indexed(e.Project) || r.cluster != indexed(e.Cluster):
		return changed("its indexed columns (time, kind, repository, project, cluster) differ from its stored entry")
	}
	want := map[string]int{}
	for _, o := range e.Objects {
		ref := o.Object
		want[objectKey(indexed(ref.Kind), indexed(ref.Namespace), indexed(ref.Name), indexed(ref.APIVersion))] = 1
	}
	if len(want) != len(r.objects) {
		return changed("its object index differs from its stored entry")
	}
	for k := range want {
		if r.objects[k] == 0 {
			return changed("its object index differs from its stored entry")
		}
	}
	return nil
}

func readVerifyPage(ctx context.Context, tx *sql.Tx, after int64) ([]*storedEntry, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, at, kind, repo, project, cluster, body, prev_hash, hash FROM history WHERE seq > $1 ORDER BY seq LIMIT $2`, after, verifyPage)
	if err != nil {
		return nil, fmt.Errorf("verify the history: %w", err)
	}
	var page []*storedEntry
	bySeq := map[int64]*storedEntry{}
	for rows.Next() {
		r := &storedEntry{objects: map[string]int{}}
		var body string
		if err := rows.Scan(&r.seq, &r.at, &r.kind, &r.repo, &r.project, &r.cluster, &body, &r.prev, &r.hash); err != nil {
			rows.Close()
			return nil, fmt.Errorf("verify the history: %w", err)
		}
		r.decodeErr = json.Unmarshal([]byte(body), &r.entry)
		page = append(page, r)
		bySeq[r.seq] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("verify the history: %w", err)
	}
	if len(page) == 0 {
		return nil, nil
	}
	// The object index of the page's entries, and any left behind by deleted entries between.
	rows, err = tx.QueryContext(ctx, `SELECT seq, kind, namespace, name, api_version FROM history_objects WHERE seq > $1 AND seq <= $2`, after, page[len(page)-1].seq)
	if err != nil {
		return nil, fmt.Errorf("verify the history's object index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var kind, ns, name, av string
		if err := rows.Scan(&seq, &kind, &ns, &name, &av); err != nil {
			return nil, fmt.Errorf("verify the history's object index: %w", err)
		}
		if r := bySeq[seq]; r != nil {
			r.objects[objectKey(kind, ns, name, av)]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("verify the history's object index: %w", err)
	}
	return page, nil
}

// PruneHistory deletes the entries written before before, for `history.retention`. The chain
// stays verifiable: the head records the last entry pruned, its hash (the anchor the oldest
// kept entry links to) and when, so a walk starts there and says what retention removed;
// pruning is never silent. It returns how many entries it deleted.
func (s *State) PruneHistory(ctx context.Context, before time.Time) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("prune the history: %w", err)
	}
	defer tx.Rollback()
	// The head row first: appends wait, and no entry is pruned half-way through one.
	var head int64
	if err := tx.QueryRowContext(ctx, `UPDATE history_head SET seq = seq WHERE id = 1 RETURNING seq`).Scan(&head); err != nil {
		return 0, fmt.Errorf("prune the history: take the chain's head: %w", err)
	}
	// Entries are pruned from the start only: the last one older than before and all before it.
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM history WHERE at < $1`, before.UnixMilli()).Scan(&last); err != nil {
		return 0, fmt.Errorf("prune the history: %w", err)
	}
	if !last.Valid {
		return 0, nil
	}
	var hash string
	if err := tx.QueryRowContext(ctx, `SELECT hash FROM history WHERE seq = $1`, last.Int64).Scan(&hash); err != nil {
		return 0, fmt.Errorf("prune the history: read entry %d: %w", last.Int64, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM history WHERE seq <= $1`, last.Int64)
	if err != nil {
		return 0, fmt.Errorf("prune the history up to entry %d: %w", last.Int64, err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `DELETE FROM history_objects WHERE seq <= $1`, last.Int64); err != nil {
		return 0, fmt.Errorf("prune the history's object index up to entry %d: %w", last.Int64, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE history_head SET pruned_seq = $1, pruned_hash = $2, pruned_at = $3 WHERE id = 1`,
		last.Int64, hash, s.now().UnixMilli()); err != nil {
		return 0, fmt.Errorf("prune the history: record the pruning: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("prune the history up to entry %d: %w", last.Int64, err)
	}
	return n, nil
}
