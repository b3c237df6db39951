package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/plan"
)

var (
	deployAPI = plan.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "api"}
	configMap = plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "settings"}
	namespace = plan.ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "web"}
)

// journal is a short history of one repository: a plan, its apply on prod-eu, a drift check
// and a plan of another repository on another cluster.
func journal() []history.Entry {
	return []history.Entry{
		{Kind: history.Plan, Forge: "github", Repo: "acme/shop", Number: 7, SHA: "c0ffee", Project: "web", Cluster: "prod-eu", Actor: "alice",
			State: "planned", Summary: "1 to update", Objects: []history.Object{{Object: deployAPI, Outcome: "update", Diff: "-replicas: 2\n+replicas: 3\n"}}},
		{Kind: history.Apply, Forge: "github", Repo: "acme/shop", Number: 7, SHA: "c0ffee", Project: "web", Cluster: "prod-eu", Actor: "alice",
			Approvals: []history.Approval{{Reviewer: "bob", SHA: "c0ffee"}}, Verdict: "allowed", State: "succeeded",
			Objects: []history.Object{{Object: deployAPI, Outcome: "configured", Health: "Current"}, {Object: configMap, Outcome: "unchanged"}}},
		{Kind: history.DriftCheck, Forge: "github", Repo: "acme/shop", Project: "web", Cluster: "prod-eu", Actor: "kubeplan", State: "drifted",
			Objects: []history.Object{{Object: deployAPI, Outcome: "changed", Causes: []string{"`.spec.replicas` changed by \"kubectl\""}}}},
		{Kind: history.Plan, Forge: "gitlab", Repo: "acme/infra", Number: 3, Project: "base", Cluster: "prod-us", Actor: "carol", State: "planned",
			Objects: []history.Object{{Object: namespace, Outcome: "create"}}},
	}
}

func appendAll(t *testing.T, s *State, entries []history.Entry) []history.Entry {
	t.Helper()
	var out []history.Entry
	for _, e := range entries {
		got, err := s.AppendHistory(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

func seqs(entries []history.Entry) []int64 {
	var out []int64
	for _, e := range entries {
		out = append(out, e.Seq)
	}
	return out
}

// Entries are chained as they are appended, read back newest first exactly as stored, and
// selected by repository, target, kind, time and object.
func TestHistoryIsChainedAndFiltered(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := t.Context()
		clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		s := open(&clock).State()
		var stored []history.Entry
		for _, e := range journal() {
			stored = append(stored, appendAll(t, s, []history.Entry{e})...)
			clock = clock.Add(time.Hour)
		}
		for i, e := range stored {
			if e.Seq != int64(i+1) || !e.At.Equal(time.Date(2026, 12, 1, 9+i, 0, 0, 0, time.UTC)) || e.Hash != e.ComputeHash() {
				t.Fatalf("entry %d stored as %+v", i, e)
			}
			if prev := ""; i > 0 {
				prev = stored[i-1].Hash
				if e.PrevHash != prev {
					t.Fatalf("entry %d follows %q, want %q", e.Seq, e.PrevHash, prev)
				}
			}
		}
		got, found, err := s.HistoryEntry(ctx, 2)
		if err != nil || !found || got.Hash != stored[1].Hash || got.Approvals[0].Reviewer != "bob" || got.Objects[0].Health != "Current" {
			t.Fatalf("HistoryEntry(2) = %+v %v %v", got, found, err)
		}
		if _, found, err := s.HistoryEntry(ctx, 99); found || err != nil {
			t.Fatalf("HistoryEntry(99) found=%v err=%v", found, err)
		}

		apiAnyVersion := deployAPI
		apiAnyVersion.APIVersion = ""
		apiAnyVersion.Kind = "deployment"
		for _, tc := range []struct {
			name   string
			filter history.Filter
			want   []int64
		}{
			{"everything, newest first", history.Filter{}, []int64{4, 3, 2, 1}},
			{"one repository", history.Filter{Repos: []string{"github:acme/shop"}}, []int64{3, 2, 1}},
			{"no readable repository sees nothing", history.Filter{Repos: []string{}}, nil},
			{"project and cluster", history.Filter{Project: "base", Cluster: "prod-us"}, []int64{4}},
			{"kinds", history.Filter{Kinds: []history.Kind{history.Apply, history.DriftCheck}}, []int64{3, 2}},
			{"since", history.Filter{Since: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)}, []int64{4, 3}},
			{"a page before", history.Filter{Before: 3, Limit: 1}, []int64{2}},
			{"an object's timeline", history.Filter{Object: &deployAPI}, []int64{3, 2, 1}},
			{"an object, any version, any case", history.Filter{Object: &apiAnyVersion, Kinds: []history.Kind{history.Plan}}, []int64{1}},
			{"an object in another version", history.Filter{Object: &plan.ObjectRef{APIVersion: "apps/v2", Kind: "Deployment", Namespace: "web", Name: "api"}}, nil},
			{"a cluster-scoped object", history.Filter{Object: &plan.ObjectRef{Kind: "Namespace", Name: "web"}}, []int64{4}},
		} {
			got, err := s.History(ctx, tc.filter)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !slices.Equal(seqs(got), tc.want) {
				t.Errorf("%s: entries %v, want %v", tc.name, seqs(got), tc.want)
			}
		}
		res, err := s.VerifyHistory(ctx)
		if err != nil || !res.OK() || res.Checked != 4 || res.HeadSeq != 4 || res.HeadHash != stored[3].Hash {
			t.Fatalf("VerifyHistory = %+v %v", res, err)
		}
	})
}

// Replicas appending to one store at once never fork the chain: every entry follows exactly
// one other, and the chain verifies.
func TestReplicasAppendingAtOnceKeepOneChain(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := t.Context()
		clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		replicas := []*State{open(&clock).State(), open(&clock).State()}
		const n = 24
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := history.Entry{Kind: history.Plan, Forge: "github", Repo: "acme/shop", Number: i + 1, Project: "web", Cluster: "prod", State: "planned",
					At: clock.Add(time.Duration(i) * time.Second), Objects: []history.Object{{Object: deployAPI, Outcome: "update"}}}
				if _, err := replicas[i%2].AppendHistory(ctx, e); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		all, err := replicas[0].History(ctx, history.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != n {
			t.Fatalf("%d entries, want %d", len(all), n)
		}
		follows := map[string]int64{}
		numbers := map[int]bool{}
		for _, e := range all {
			if other, ok := follows[e.PrevHash]; ok {
				t.Fatalf("entries %d and %d both follow %q: the chain forked", other, e.Seq, e.PrevHash)
			}
			follows[e.PrevHash] = e.Seq
			numbers[e.Number] = true
		}
		if len(numbers) != n {
			t.Fatalf("%d different entries stored, want %d", len(numbers), n)
		}
		res, err := replicas[1].VerifyHistory(ctx)
		if err != nil || !res.OK() || res.Checked != n {
			t.Fatalf("VerifyHistory = %+v %v", res, err)
		}
	})
}

// Anyone who edits the history through SQL, whatever they edit, is named: the first entry
// that does not fit, and why.
func TestTamperedHistoryNamesTheFirstEntryThatDoesNotFit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper []string
		seq    int64
		reason history.Reason
		// checked: the entries that fit before the break.
		checked int
	}{
		{"an actor changed in the entry", []string{`UPDATE history SET body = REPLACE(body, '"actor":"alice"', '"actor":"mallory"') WHERE seq = 2`}, 2, history.Changed, 1},
		{"an approval removed", []string{`UPDATE history SET body = REPLACE(body, '"reviewer":"bob"', '"reviewer":"mallory"') WHERE seq = 2`}, 2, history.Changed, 1},
		{"a middle entry deleted", []string{`DELETE FROM history WHERE seq = 2`}, 2, history.Missing, 1},
		{"the first entry deleted", []string{`DELETE FROM history WHERE seq = 1`}, 1, history.Missing, 0},
		{"the newest entry deleted", []string{`DELETE FROM history WHERE seq = 4`}, 4, history.Missing, 3},
		{"the newest entries deleted and the head moved back", []string{`DELETE FROM history WHERE seq >= 3`, `UPDATE history_head SET seq = 2`}, 2, history.Changed, 2},
		{"two entries swapped", []string{`UPDATE history SET seq = 99 WHERE seq = 2`, `UPDATE history SET seq = 2 WHERE seq = 3`, `UPDATE history SET seq = 3 WHERE seq = 99`}, 2, history.Changed, 1},
		{"a hash replaced", []string{`UPDATE history SET hash = 'beef' WHERE seq = 3`}, 3, history.Changed, 2},
		{"the repository column changed to hide the entry", []string{`UPDATE history SET repo = 'github:acme/other' WHERE seq = 1`}, 1, history.Changed, 0},
		{"the object index emptied to hide the entry from a timeline", []string{`DELETE FROM history_objects WHERE seq = 3`}, 3, history.Changed, 2},
		{"an entry appended without the head", []string{`INSERT INTO history(seq, at, kind, repo, project, cluster, body, prev_hash, hash) SELECT 5, at, kind, repo, project, cluster, REPLACE(body, '"seq":4', '"seq":5'), prev_hash, hash FROM history WHERE seq = 4`}, 5, history.Changed, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, open opener) {
				ctx := t.Context()
				clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
				q := open(&clock)
				s := q.State()
				appendAll(t, s, journal())
				for _, stmt := range tc.tamper {
					if _, err := q.db.ExecContext(ctx, stmt); err != nil {
						t.Fatalf("tamper %q: %v", stmt, err)
					}
				}
				res, err := s.VerifyHistory(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if res.OK() || res.Break.Seq != tc.seq || res.Break.Reason != tc.reason {
					t.Fatalf("VerifyHistory found %+v (checked %d), want entry %d: %s", res.Break, res.Checked, tc.seq, tc.reason)
				}
				if res.Checked != tc.checked {
					t.Errorf("checked %d entries before the break, want %d", res.Checked, tc.checked)
				}
			})
		})
	}
}

// Retention prunes the oldest entries only when configured; the kept chain still verifies
// from the last pruned entry's hash, says what was pruned and when, and new entries follow.
func TestPrunedHistoryStillVerifiesAndSaysWhatWasPruned(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := t.Context()
		clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		q := open(&clock)
		s := q.State()
		for i, e := range journal() {
			e.At = clock.Add(time.Duration(i) * 24 * time.Hour)
			appendAll(t, s, []history.Entry{e})
		}
		clock = time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
		// The queue's own pruning leaves the history alone.
		if _, _, err := q.Prune(ctx, clock); err != nil {
			t.Fatal(err)
		}
		if all, _ := s.History(ctx, history.Filter{}); len(all) != 4 {
			t.Fatalf("the queue's pruning left %d history entries, want 4", len(all))
		}
		n, err := s.PruneHistory(ctx, time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
		if err != nil || n != 2 {
			t.Fatalf("PruneHistory = %d %v, want 2 entries pruned", n, err)
		}
		if all, _ := s.History(ctx, history.Filter{Object: &deployAPI}); !slices.Equal(seqs(all), []int64{3}) {
			t.Fatalf("the timeline after pruning has entries %v, want [3]", seqs(all))
		}
		res, err := s.VerifyHistory(ctx)
		if err != nil || !res.OK() || res.Checked != 2 || res.PrunedThrough != 2 || !res.PrunedAt.Equal(clock) {
			t.Fatalf("VerifyHistory after pruning = %+v %v", res, err)
		}
		appendAll(t, s, journal()[:1])
		if n, err := s.PruneHistory(ctx, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 0 {
			t.Fatalf("pruning nothing old enough = %d %v", n, err)
		}
		res, err = s.VerifyHistory(ctx)
		if err != nil || !res.OK() || res.Checked != 3 || res.HeadSeq != 5 {
			t.Fatalf("VerifyHistory after another append = %+v %v", res, err)
		}
		// Deleting the oldest kept entry is still named.
		if _, err := q.db.ExecContext(ctx, `DELETE FROM history WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
		res, err = s.VerifyHistory(ctx)
		if err != nil || res.OK() || res.Break.Seq != 3 || res.Break.Reason != history.Missing {
			t.Fatalf("VerifyHistory after deleting the oldest kept entry = %+v %v", res.Break, err)
		}
	})
}

// What an attacker's manifest puts in names and diffs (invalid UTF-8, NUL bytes, terminal
// escapes) is recorded, read back and verifies like anything else: it can neither keep its
// entry out of the history nor make the chain look tampered with.
func TestHostileStringsAreRecordedAndVerify(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		ctx := t.Context()
		clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		s := open(&clock).State()
		odd := plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "a\x00b\xff"}
		stored, err := s.AppendHistory(ctx, history.Entry{Kind: history.Plan, Forge: "github", Repo: "acme/shop", Project: "web\x00", Cluster: "prod",
			Actor: "mallory\xfe", State: "failed", Objects: []history.Object{{Object: odd, Outcome: "fail", Diff: "+data: \"\x1b[31m\xc3\x28\"\n"}}})
		if err != nil {
			t.Fatal(err)
		}
		got, found, err := s.HistoryEntry(ctx, stored.Seq)
		if err != nil || !found || got.Hash != stored.Hash || got.ComputeHash() != got.Hash || got.Actor != "mallory\uFFFD" {
			t.Fatalf("read back %+v %v %v", got, found, err)
		}
		if all, err := s.History(ctx, history.Filter{Project: "web\x00", Object: &got.Objects[0].Object}); err != nil || len(all) != 1 {
			t.Fatalf("the entry by its odd project and object: %d entries, %v", len(all), err)
		}
		if res, err := s.VerifyHistory(ctx); err != nil || !res.OK() || res.Checked != 1 {
			t.Fatalf("VerifyHistory = %+v %v", res, err)
		}
	})
}

// A page of entries past the store's maximum is cut to the maximum.
func TestHistoryLimitIsCapped(t *testing.T) {
	clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := openAt(t, t.TempDir()+"/state.db", &clock).State()
	for i := range DefaultHistoryLimit + 1 {
		if _, err := s.AppendHistory(t.Context(), history.Entry{Kind: history.Plan, Forge: "github", Repo: "acme/shop", Summary: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ limit, want int }{{0, DefaultHistoryLimit}, {3, 3}, {MaxHistoryLimit + 1, DefaultHistoryLimit + 1}} {
		got, err := s.History(t.Context(), history.Filter{Limit: tc.limit})
		if err != nil || len(got) != tc.want {
			t.Errorf("limit %d: %d entries (%v), want %d", tc.limit, len(got), err, tc.want)
		}
	}
}
