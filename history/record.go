package history

import (
	"context"
	"log/slog"
)

// Appender is where entries go: the store.
type Appender interface {
	AppendHistory(ctx context.Context, e Entry) (Entry, error)
}

// Record appends e to the history. The history records work; it never stops it: an entry the
// store refuses is logged with what identifies it and told to failed (a metric), and the plan
// or apply it records goes on and is reported as usual. A job's deadline does not cut the
// append short: the record of what the job did must not be lost with it.
func Record(ctx context.Context, to Appender, log *slog.Logger, failed func(Kind), e Entry) {
	if _, err := to.AppendHistory(context.WithoutCancel(ctx), e); err != nil {
		log.Error("history entry not written", "kind", e.Kind, "forge", e.Forge, "repo", e.Repo, "number", e.Number,
			"project", e.Project, "cluster", e.Cluster, "sha", e.SHA, "actor", e.Actor, "state", e.State, "err", err)
		if failed != nil {
			failed(e.Kind)
		}
	}
}
