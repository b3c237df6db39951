package main

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/internal/golden"
	"github.com/kubeplan/kubeplan/internal/pgtest"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/store"
)

var (
	historyAPI = plan.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "api"}
	historyCM  = plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "=HYPERLINK(\"http://evil\")"}
)

// shopHistory is a week of the shop's history: a plan, its apply before merge on bob's
// approval, the roll-out after merge, drift found the next day, and a plan of another
// repository.
func shopHistory() []history.Entry {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	pr := func(e history.Entry) history.Entry {
		e.Forge, e.Repo, e.Number, e.URL = "github", "acme/shop", 7, "https://github.com/acme/shop/pull/7"
		e.Project, e.Cluster = "web", "prod-eu"
		return e
	}
	return []history.Entry{
		pr(history.Entry{At: at, Kind: history.Plan, SHA: "c0ffee1", Actor: "alice", Verdict: "needs 1 approval", State: "planned", Summary: "1 to update, 1 to create",
			Objects: []history.Object{
				{Object: historyAPI, Outcome: "update", Diff: "   spec:\n-    replicas: 2\n+    replicas: 3\n"},
				{Object: historyCM, Outcome: "create", Diff: "+data: {color: \"\x1b[31mred\"}\n"},
			}}),
		pr(history.Entry{At: at.Add(time.Hour), Kind: history.Apply, SHA: "c0ffee1", Actor: "alice", Approvals: []history.Approval{{Reviewer: "bob", SHA: "c0ffee1"}},
			Verdict: "allowed", PlanHash: "9f8e7d", State: "succeeded", Summary: "1 configured, 1 created",
			Objects: []history.Object{{Object: historyAPI, Outcome: "configured", Health: "Current"}, {Object: historyCM, Outcome: "created"}}}),
		pr(history.Entry{At: at.Add(2 * time.Hour), Kind: history.Rollout, SHA: "d00d2", CommitURL: "https://github.com/acme/shop/commit/d00d2", Actor: "carol",
			Approvals: []history.Approval{{Reviewer: "bob", SHA: "c0ffee1"}}, Verdict: "allowed", State: "succeeded", Summary: "nothing to change",
			Objects: []history.Object{{Object: historyAPI, Outcome: "unchanged", Health: "Current"}}}),
		{At: at.Add(26 * time.Hour), Kind: history.DriftCheck, Forge: "github", Repo: "acme/shop", Number: 12, Issue: true, SHA: "d00d2",
			Project: "web", Cluster: "prod-eu", Actor: "kubeplan", State: "drifted", Summary: "1 changed",
			Objects: []history.Object{{Object: historyAPI, Outcome: "changed", Diff: "-    replicas: 3\n+    replicas: 5\n",
				Causes: []string{"`.spec.replicas` changed by \"kubectl\" (Update, subresource scale) at 2026-12-01 10:40:00 UTC"}}}},
		{At: at.Add(27 * time.Hour), Kind: history.Plan, Forge: "gitlab", Repo: "acme/infra", Number: 3, Project: "base", Cluster: "prod-us",
			Actor: "dave", State: "failed", Summary: "1 failed", Objects: []history.Object{{Object: plan.ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "web"},
				Outcome: "fail", Error: "namespaces \"web\" is forbidden"}}},
	}
}

// historyStore fills a new store at location with the shop's history.
func historyStore(t *testing.T, location string) {
	t.Helper()
	q, err := store.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, e := range shopHistory() {
		if _, err := q.State().AppendHistory(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// An auditor reads the history from serve's SQLite file: every entry, one object's timeline,
// JSON and CSV exports, pinned by golden files.
func TestHistoryOutputsGolden(t *testing.T) {
	state := filepath.Join(t.TempDir(), "kubeplan.db")
	historyStore(t, state)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"history.txt", nil},
		{"history-object.txt", []string{"--object", "Deployment/web/api"}},
		{"history.json", []string{"--repo", "github:acme/shop", "--kind", "apply", "--kind", "rollout", "-o", "json"}},
		{"history.csv", []string{"--project", "web", "--cluster", "prod-eu", "-o", "csv"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			code, out, errOut := kubeplan(append([]string{"history", "--state", state}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit code %d; stderr: %s", code, errOut)
			}
			if strings.Contains(out, "\x1b") {
				t.Error("a terminal escape from a manifest reached the output")
			}
			golden.Assert(t, tc.golden, out)
		})
	}
	// The exports parse back: JSON as history entries that still carry their hashes, CSV as
	// one row per entry and object.
	_, out, _ := kubeplan("history", "--state", state, "-o", "json")
	var entries []history.Entry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 5 || entries[0].Seq != 5 {
		t.Fatalf("JSON export: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		if e.ComputeHash() != e.Hash {
			t.Errorf("exported entry %d does not carry its own hash", e.Seq)
		}
	}
	_, out, _ = kubeplan("history", "--state", state, "-o", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 1+7 {
		t.Fatalf("CSV export: %d rows, %v", len(rows), err)
	}
}

// Filters narrow what is shown; an object no entry touched, or a window with nothing in it,
// says so.
func TestHistoryFilters(t *testing.T) {
	state := filepath.Join(t.TempDir(), "kubeplan.db")
	historyStore(t, state)
	for _, tc := range []struct {
		name string
		args []string
		want []string // entries' kinds, newest first, from the JSON
	}{
		{"one repository", []string{"--repo", "gitlab:acme/infra"}, []string{"plan"}},
		{"one cluster", []string{"--cluster", "prod-eu", "--limit", "2"}, []string{"drift_check", "rollout"}},
		{"a cluster-scoped object", []string{"--object", "Namespace/web"}, []string{"plan"}},
		{"the object's kind in lower case", []string{"--object", "deployment/web/api", "--kind", "plan"}, []string{"plan"}},
		{"recent only", []string{"--since", "1h"}, nil},
		{"days", []string{"--since", "36500d"}, []string{"plan", "drift_check", "rollout", "apply", "plan"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := kubeplan(append([]string{"history", "--state", state, "-o", "json"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit code %d; stderr: %s", code, errOut)
			}
			var entries []history.Entry
			if err := json.Unmarshal([]byte(out), &entries); err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, e := range entries {
				kinds = append(kinds, string(e.Kind))
			}
			if strings.Join(kinds, ",") != strings.Join(tc.want, ",") {
				t.Errorf("kinds %v, want %v", kinds, tc.want)
			}
		})
	}
	if _, out, _ := kubeplan("history", "--state", state, "--object", "Deployment/web/other"); out != "no history entries for Deployment web/other\n" {
		t.Errorf("an object nobody touched: %q", out)
	}
}

// Mistakes on the command line are one clear line on stderr and exit code 1, before any store
// is opened or created.
func TestHistoryMistakesAreClear(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "kubeplan.db")
	historyStore(t, state)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"object with too many parts", []string{"--state", state, "--object", "Deployment/web/api/extra"}, `--object wants KIND/NAMESPACE/NAME (Deployment/web/api), or KIND/NAME for a cluster-scoped object (Namespace/web); have "Deployment/web/api/extra"`},
		{"object with no name", []string{"--state", state, "--object", "Deployment/web/"}, `--object wants KIND/NAMESPACE/NAME`},
		{"object without a kind", []string{"--state", state, "--object", "api"}, `--object wants KIND/NAMESPACE/NAME`},
		{"unknown output", []string{"--state", state, "-o", "yaml"}, `-o "yaml" is not an output format; use text, json or csv`},
		{"repository without its forge", []string{"--state", state, "--repo", "acme/shop"}, `--repo wants forge:owner/name`},
		{"unknown kind", []string{"--state", state, "--kind", "deploy"}, `--kind "deploy" is not a kind of entry; kinds: plan, apply, rollout, revert, drift_apply, drift_check`},
		{"since that is no duration", []string{"--state", state, "--since", "yesterday"}, `--since wants a positive duration such as 90m, 24h or 7d (have "yesterday")`},
		{"limit too large", []string{"--state", state, "--limit", "5000"}, `--limit must be between 1 and 1000`},
		{"a store that does not exist", []string{"--state", filepath.Join(dir, "typo.db")}, `does not exist (--state names serve's SQLite file or PostgreSQL URL)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := kubeplan(append([]string{"history"}, tc.args...)...)
			if code != 1 || out != "" || !strings.HasPrefix(errOut, "kubeplan: ") || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit code %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "typo.db")); err == nil {
		t.Error("reading a mistyped store created it")
	}
}

// verify says the chain holds, and after someone edits a row through SQL, names that entry
// and exits 1.
func TestHistoryVerifyNamesATamperedEntry(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "kubeplan.db")
	historyStore(t, state)
	// The store named by the configuration file, as serve reads it.
	config := filepath.Join(dir, "kubeplan.yaml")
	if err := os.WriteFile(config, []byte("state: "+state+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := kubeplan("history", "verify", "--config", config)
	if code != 0 || !strings.HasPrefix(out, "the history holds: 5 entries checked; the newest is entry 5, hash ") || errOut != "" {
		t.Fatalf("verify of an untouched history: exit %d, %q, %q", code, out, errOut)
	}
	db, err := sql.Open("sqlite", state)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE history SET body = REPLACE(body, '"actor":"carol"', '"actor":"mallory"') WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = kubeplan("history", "verify", "--state", state)
	want := "kubeplan: the history does not hold at entry 3: content changed (its hash does not cover its content); 2 entries before it fit\n"
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("verify of a tampered history: exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
}

// The same commands read a PostgreSQL store several replicas share; a URL's password is never
// printed, even when the server cannot be reached.
func TestHistoryFromPostgreSQL(t *testing.T) {
	dsn := pgtest.Database(t)
	historyStore(t, dsn)
	code, out, errOut := kubeplan("history", "--state", dsn, "--object", "Deployment/web/api", "-o", "json")
	var entries []history.Entry
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil || len(entries) != 4 {
		t.Fatalf("exit %d, %d entries; stderr %s", code, len(entries), errOut)
	}
	if code, out, errOut := kubeplan("history", "verify", "--state", dsn); code != 0 || !strings.Contains(out, "5 entries checked") {
		t.Fatalf("verify: exit %d, %q, %q", code, out, errOut)
	}
	const unreachable = "postgres://kubeplan:s3cret-pw@127.0.0.1:1/kubeplan?sslmode=disable&connect_timeout=5"
	for _, args := range [][]string{{"history", "--state", unreachable}, {"history", "verify", "--state", unreachable}} {
		code, out, errOut := kubeplan(args...)
		if code != 1 || strings.Contains(out+errOut, "s3cret-pw") || !strings.Contains(errOut, "kubeplan:xxxxx@127.0.0.1:1") {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
