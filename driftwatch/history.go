package driftwatch

import (
	"context"
	"strings"

	"github.com/kubeplan/kubeplan/drift"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/outcome"
)

// HistoryActor is who the history says did what kubeplan does on its own: scheduled checks
// and reverts.
const HistoryActor = "kubeplan"

// History states of driftwatch's entries.
const (
	historyDrifted = "drifted"
	historyClean   = "clean"
	historyFailed  = "failed"
	historyRefused = "refused"
	historyAllowed = "allowed"
)

// IssueKeeper is a Notifier that keeps a forge issue of the drift (kubeplan serve wires
// package driftissue as one): NotifyIssue does what Notify does and returns the issue, nil
// when there is none, so the history can name it.
type IssueKeeper interface {
	NotifyIssue(ctx context.Context, n Notice) (*forge.Issue, error)
}

// record appends e to the history (history.Record: a refused entry is logged and counted,
// never in the way of the work it records).
func (w *Watcher) record(ctx context.Context, e history.Entry) {
	history.Record(ctx, w.State, w.Log, w.ObserveHistoryFailure, e)
}

// entryOf is what every entry about a target shares.
func entryOf(kind history.Kind, t target, actor string) history.Entry {
	return history.Entry{Kind: kind, Forge: t.repo.Forge, Repo: t.repo.Name, SHA: t.sha, Project: t.project.Name, Cluster: t.cluster, Actor: actor}
}

// onIssue is e about the drift issue is (nothing changes when is is nil).
func onIssue(e history.Entry, is *forge.Issue) history.Entry {
	if is != nil {
		e.Number, e.Issue, e.URL = is.Number, true, is.URL
	}
	return e
}

// checkEntry is a check that found drift, or found it gone: the objects that count as drift,
// with their diffs (Secret values hidden, as in the issue) and who changed which field.
func checkEntry(t target, r *drift.Report, revert string, is *forge.Issue, repeat bool) history.Entry {
	e := onIssue(entryOf(history.DriftCheck, t, HistoryActor), is)
	e.State, e.Summary = historyClean, r.Summary()
	if r.Drifted() {
		e.State = historyDrifted
	}
	if revert != "" {
		e.Summary += "; " + revert
	}
	if repeat {
		e.Summary = RepeatCheck + e.Summary
		return e
	}
	for _, o := range r.Objects {
		if !o.Counted() {
			continue
		}
		ho := history.Object{Object: o.Object, Outcome: string(o.State), Diff: o.Diff}
		for _, f := range o.Fields {
			ho.Causes = append(ho.Causes, f.String())
		}
		e.Objects = append(e.Objects, ho)
	}
	return e
}

// RepeatCheck begins the summary of a drift check that found what the check before it found:
// its entry lists no objects (the first entry of that drift has them).
const RepeatCheck = "as at the last check: "

// failedCheckEntry is a drift check that could not run to the end, and why (the error as the
// drift record keeps it, credentials redacted).
func failedCheckEntry(t target, why string) history.Entry {
	e := entryOf(history.DriftCheck, t, HistoryActor)
	e.State, e.Summary = historyFailed, why
	return e
}

// applyEntry is git's state applied again over drift (a revert, or `/apply` on the issue):
// what became of each object, with the diff the check saw.
func applyEntry(base history.Entry, r *drift.Report, state, summary string, res *outcome.Result) history.Entry {
	e := base
	e.State, e.Summary = state, summary
	diffs := map[string]string{}
	for _, o := range r.Objects {
		diffs[refKey(o.Object)] = o.Diff
	}
	if res != nil {
		for _, o := range res.Objects {
			e.Objects = append(e.Objects, history.Object{Object: o.Object, Outcome: string(o.Action), Health: o.Health, Error: o.Error, Diff: diffs[refKey(o.Object)]})
		}
	}
	return e
}

// refusedEntry is `/apply` on a drift issue that was refused, and why.
func refusedEntry(base history.Entry, reasons []string) history.Entry {
	e := base
	e.State, e.Summary = historyRefused, "refused: "+strings.Join(reasons, "; ")
	return e
}
