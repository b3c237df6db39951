package store

import (
	"context"
	"fmt"
)

// Repos lists every repository ("forge:org/repo") the state knows of, sorted: those with
// history entries, locks or drift checks. The web page narrows it to what its user can read.
func (s *State) Repos(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT repo FROM history UNION SELECT repo FROM locks UNION SELECT repo FROM drift ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return out, nil
}
