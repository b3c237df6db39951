package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

const uiTables = `
CREATE TABLE IF NOT EXISTS ui_nonces (
	nonce      TEXT PRIMARY KEY, -- a hash of the single-use value (an OAuth state), never the value
	expires_at MILLIS NOT NULL
);
CREATE INDEX IF NOT EXISTS ui_nonces_expiry ON ui_nonces(expires_at);
`

// Nonces remembers single-use values (the web page's OAuth states) until they expire, in the
// store every replica shares: a value used on one replica is used on all.
type Nonces struct {
	db  *sql.DB
	now func() time.Time
}

// Nonces returns the used-nonce table kept in the queue's database.
func (q *Queue) Nonces() *Nonces { return &Nonces{db: q.db, now: q.now} }

// UseOnce records nonce as used until expires and reports whether this was its first use.
// A nonce used before and not yet expired answers false, whichever replica used it. Expired
// nonces are forgotten on the way, so the table stays as small as the live ones.
func (n *Nonces) UseOnce(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	now := n.now().UnixMilli()
	if _, err := n.db.ExecContext(ctx, `DELETE FROM ui_nonces WHERE expires_at <= $1`, now); err != nil {
		return false, fmt.Errorf("forget expired nonces: %w", err)
	}
	res, err := n.db.ExecContext(ctx, `INSERT INTO ui_nonces(nonce, expires_at) VALUES($1, $2) ON CONFLICT(nonce) DO NOTHING`,
		nonce, expires.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("use nonce: %w", err)
	}
	added, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("use nonce: %w", err)
	}
	return added == 1, nil
}
