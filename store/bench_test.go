package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kubeplan/kubeplan/internal/pgtest"
)

// The webhook path's write: record the delivery and queue (or coalesce) its job, on each
// backend side by side.
func BenchmarkEnqueue(b *testing.B) {
	for _, backend := range []struct {
		name     string
		location func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return filepath.Join(b.TempDir(), "state.db") }},
		{"postgres", func(b *testing.B) string { return pgtest.Database(b) }},
	} {
		b.Run(backend.name, func(b *testing.B) {
			q, err := Open(context.Background(), backend.location(b))
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			payload := make([]byte, 2048)
			i := 0
			for b.Loop() {
				i++
				if _, err := q.Enqueue(context.Background(), fmt.Sprint("d-", i), Job{Key: fmt.Sprint("gh:o/r#", i%20), Kind: "event", Payload: payload}, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
