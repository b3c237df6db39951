package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// The webhook path's write: record the delivery and queue (or coalesce) its job.
func BenchmarkEnqueue(b *testing.B) {
	q, err := Open(context.Background(), filepath.Join(b.TempDir(), "state.db"))
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
}
