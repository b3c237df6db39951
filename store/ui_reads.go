package store

import (
	"context"
	"fmt"
	"strings"
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

// ObjectMatch is an object of the history found by SearchObjects, on one cluster.
type ObjectMatch struct {
	Cluster string
	// Kind is lower case, as the history's object index keeps it.
	Kind, Namespace, Name string
	// LastSeq is the newest entry that touched or saw it; Entries how many did.
	LastSeq int64
	Entries int
}

// SearchObjects finds objects of the history in repos whose "kind namespace/name" contains
// text (in any case), the most recently touched first, at most limit of them. No repository
// finds nothing.
func (s *State) SearchObjects(ctx context.Context, repos []string, text string, limit int) ([]ObjectMatch, error) {
	if len(repos) == 0 {
		return nil, nil
	}
	// The text matches itself in the LIKE pattern (ESCAPE '\'): % and _ are no wildcards.
	escaped := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(text))
	args := []any{"%" + escaped + "%"}
	in := make([]string, len(repos))
	for i, r := range repos {
		args = append(args, r)
		in[i] = fmt.Sprintf("$%d", len(args))
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, `SELECT h.cluster, o.kind, o.namespace, o.name, MAX(h.seq), COUNT(DISTINCT h.seq)
		FROM history_objects o JOIN history h ON h.seq = o.seq
		WHERE LOWER(o.kind || ' ' || o.namespace || '/' || o.name) LIKE $1 ESCAPE '\' AND h.repo IN (`+strings.Join(in, ", ")+`)
		GROUP BY h.cluster, o.kind, o.namespace, o.name
		ORDER BY MAX(h.seq) DESC LIMIT $`+fmt.Sprint(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("search the history's objects: %w", err)
	}
	defer rows.Close()
	var out []ObjectMatch
	for rows.Next() {
		var m ObjectMatch
		if err := rows.Scan(&m.Cluster, &m.Kind, &m.Namespace, &m.Name, &m.LastSeq, &m.Entries); err != nil {
			return nil, fmt.Errorf("search the history's objects: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search the history's objects: %w", err)
	}
	return out, nil
}
