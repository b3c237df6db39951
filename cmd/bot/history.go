package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/store"
)

// historyFlags are the flags of `kubeplan history`.
type historyFlags struct {
	configFile, state string
	project, cluster  string
	object            string
	repos, kinds      []string
	since             string
	limit             int
	output            string
}

func newHistoryCommand() *cobra.Command {
	var f historyFlags
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show what kubeplan planned, applied and found drifted, from its state store",
		Long: `Show the audit history kept in kubeplan's state store (the SQLite file or PostgreSQL
database serve uses: --state, or the configuration's state): every plan, apply, roll-out,
revert and drift check, newest first, with who asked, the approvals that counted, the policy's
verdict and the outcome per object.

--object KIND/NAMESPACE/NAME (KIND/NAME for a cluster-scoped object) shows one object's
timeline: every entry that touched or saw it, with its outcome, diff, approvers and the causes
of drift. -o json prints the entries as JSON, -o csv one row per entry and object.

"kubeplan history verify" checks the history's hash chain (docs/history.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runHistory(cmd, f) },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.configFile, "config", "", "YAML configuration file (as for serve); its state is read")
	pf.StringVar(&f.state, "state", config.Default().State, "state store: an SQLite file, or a postgres:// URL (overrides the configuration's)")
	fl := cmd.Flags()
	fl.StringVar(&f.project, "project", "", "only this project")
	fl.StringVar(&f.cluster, "cluster", "", "only this cluster")
	fl.StringVar(&f.object, "object", "", "one object's timeline: KIND/NAMESPACE/NAME, or KIND/NAME when cluster-scoped")
	fl.StringSliceVar(&f.repos, "repo", nil, "only this repository, as forge:owner/name (github:acme/shop); repeatable")
	fl.StringSliceVar(&f.kinds, "kind", nil, "only entries of this kind ("+kindList()+"); repeatable")
	fl.StringVar(&f.since, "since", "", "only entries this recent: a duration (90m, 24h, 7d)")
	fl.IntVar(&f.limit, "limit", store.DefaultHistoryLimit, fmt.Sprintf("at most this many entries (up to %d)", store.MaxHistoryLimit))
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text, json or csv")
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check the history's hash chain and name the first entry that does not fit",
		Long: `Walk the whole history in order and recompute every entry's hash: an entry edited, deleted,
reordered or replaced in the database after kubeplan wrote it is named, with why. Entries that
history.retention pruned are said so; the chain is checked from the oldest one kept.

Exit code: 0 the chain holds, 1 it does not (or the store could not be read).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runHistoryVerify(cmd, f) },
	})
	return cmd
}

func kindList() string {
	names := make([]string, len(history.Kinds))
	for i, k := range history.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// filter turns the flags into a store filter, refusing what it cannot read before the store
// is opened.
func (f historyFlags) filter(now time.Time) (history.Filter, error) {
	flt := history.Filter{Project: f.project, Cluster: f.cluster, Limit: f.limit}
	if f.limit < 0 || f.limit > store.MaxHistoryLimit {
		return flt, fmt.Errorf("--limit must be between 1 and %d (have %d)", store.MaxHistoryLimit, f.limit)
	}
	if f.object != "" {
		ref, err := parseObject(f.object)
		if err != nil {
			return flt, err
		}
		flt.Object = &ref
	}
	for _, r := range f.repos {
		forge, repo, ok := strings.Cut(r, ":")
		if !ok || (forge != "github" && forge != "gitlab") || repo == "" {
			return flt, fmt.Errorf("--repo wants forge:owner/name, github:acme/shop or gitlab:group/project (have %q)", r)
		}
		flt.Repos = append(flt.Repos, history.RepoKey(forge, repo))
	}
	for _, k := range f.kinds {
		if !slices.Contains(history.Kinds, history.Kind(k)) {
			return flt, fmt.Errorf("--kind %q is not a kind of entry; kinds: %s", k, kindList())
		}
		flt.Kinds = append(flt.Kinds, history.Kind(k))
	}
	if f.since != "" {
		d, err := parseAge(f.since)
		if err != nil {
			return flt, err
		}
		flt.Since = now.Add(-d)
	}
	return flt, nil
}

// parseObject reads KIND/NAMESPACE/NAME, or KIND/NAME for a cluster-scoped object.
func parseObject(s string) (plan.ObjectRef, error) {
	parts := strings.Split(s, "/")
	bad := slices.Contains(parts, "")
	var ref plan.ObjectRef
	switch {
	case bad:
	case len(parts) == 3:
		ref = plan.ObjectRef{Kind: parts[0], Namespace: parts[1], Name: parts[2]}
	case len(parts) == 2:
		ref = plan.ObjectRef{Kind: parts[0], Name: parts[1]}
	default:
		bad = true
	}
	if bad {
		return ref, fmt.Errorf("--object wants KIND/NAMESPACE/NAME (Deployment/web/api), or KIND/NAME for a cluster-scoped object (Namespace/web); have %q", s)
	}
	return ref, nil
}

// parseAge reads a Go duration, or a whole number of days ("7d").
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--since wants a positive duration such as 90m, 24h or 7d (have %q)", s)
	}
	return d, nil
}

// openHistory opens the state store the flags or the configuration name. An SQLite file must
// exist already: reading a mistyped path would otherwise create an empty store and show
// nothing.
func openHistory(cmd *cobra.Command, f historyFlags) (*store.Queue, error) {
	cfg, err := config.Load(f.configFile, os.Getenv)
	if err != nil {
		return nil, err
	}
	location := cfg.State
	if cmd.Flags().Changed("state") {
		location = f.state
	}
	if !store.IsPostgres(location) {
		if _, err := os.Stat(location); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("state store %s does not exist (--state names serve's SQLite file or PostgreSQL URL)", location)
		}
	}
	return store.Open(cmd.Context(), location) // its errors never show a password
}

func runHistory(cmd *cobra.Command, f historyFlags) error {
	flt, err := f.filter(time.Now())
	if err != nil {
		return err
	}
	var write func(io.Writer, []history.Entry) error
	switch f.output {
	case "text":
		write = historyText
		if flt.Object != nil {
			write = func(w io.Writer, entries []history.Entry) error { return objectTimeline(w, *flt.Object, entries) }
		}
	case "json":
		write = historyJSON
	case "csv":
		write = historyCSV
	default:
		return fmt.Errorf("-o %q is not an output format; use text, json or csv", f.output)
	}
	q, err := openHistory(cmd, f)
	if err != nil {
		return err
	}
	defer q.Close()
	entries, err := q.State().History(cmd.Context(), flt)
	if err != nil {
		return err
	}
	if err := write(cmd.OutOrStdout(), entries); err != nil {
		return fmt.Errorf("write the history: %w", err)
	}
	return nil
}

func runHistoryVerify(cmd *cobra.Command, f historyFlags) error {
	q, err := openHistory(cmd, f)
	if err != nil {
		return err
	}
	defer q.Close()
	res, err := q.State().VerifyHistory(cmd.Context())
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if res.PrunedThrough > 0 {
		fmt.Fprintf(out, "entries 1 to %d were pruned by retention on %s; the chain is checked from entry %d\n",
			res.PrunedThrough, res.PrunedAt.Format(historyTime), res.PrunedThrough+1)
	}
	if !res.OK() {
		b := res.Break
		return fmt.Errorf("the history does not hold at entry %d: %s (%s); %d entries before it fit", b.Seq, b.Reason, b.Detail, res.Checked)
	}
	if res.HeadSeq == 0 {
		fmt.Fprintln(out, "the history holds: it has no entries yet")
		return nil
	}
	fmt.Fprintf(out, "the history holds: %d entries checked; the newest is entry %d, hash %s\n", res.Checked, res.HeadSeq, res.HeadHash)
	return nil
}

const historyTime = "2006-01-02 15:04:05 UTC"

// printable replaces control characters (a terminal escape in an attacker's manifest) with
// U+FFFD: the history is printed to terminals.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\t' {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}

// where names an entry's pull request or issue: github:acme/shop#7.
func where(e history.Entry) string {
	s := history.RepoKey(e.Forge, e.Repo)
	switch {
	case e.Issue && e.Number > 0:
		s += " issue #" + strconv.Itoa(e.Number)
	case e.Number > 0:
		s += "#" + strconv.Itoa(e.Number)
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// historyText writes one line per entry, newest first.
func historyText(w io.Writer, entries []history.Entry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "no history entries match")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tWHERE\tPROJECT/CLUSTER\tACTOR\tSTATE\tSUMMARY")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\n", e.Seq, e.At.UTC().Format(historyTime), e.Kind, printable(where(e)),
			printable(e.Project), printable(e.Cluster), printable(orDash(e.Actor)), printable(e.State), printable(e.Summary))
	}
	return tw.Flush()
}

// objectTimeline writes one object's timeline: per entry, what happened to it, on whose
// approval, its diff and who caused its drift.
func objectTimeline(w io.Writer, ref plan.ObjectRef, entries []history.Entry) error {
	name := ref.Kind + " " + ref.Name
	if ref.Namespace != "" {
		name = ref.Kind + " " + ref.Namespace + "/" + ref.Name
	}
	if len(entries) == 0 {
		_, err := fmt.Fprintf(w, "no history entries for %s\n", printable(name))
		return err
	}
	fmt.Fprintf(w, "%s, newest first\n", printable(name))
	for _, e := range entries {
		fmt.Fprintf(w, "\n%d  %s  %s  %s  %s/%s  by %s  %s\n", e.Seq, e.At.UTC().Format(historyTime), e.Kind, printable(where(e)),
			printable(e.Project), printable(e.Cluster), printable(orDash(e.Actor)), printable(e.State))
		if e.SHA != "" {
			fmt.Fprintf(w, "  commit:    %s\n", printable(e.SHA))
		}
		if len(e.Approvals) > 0 {
			approvals := make([]string, len(e.Approvals))
			for i, a := range e.Approvals {
				approvals[i] = a.Reviewer + " (at " + a.SHA + ")"
			}
			fmt.Fprintf(w, "  approvals: %s\n", printable(strings.Join(approvals, ", ")))
		}
		if e.Verdict != "" {
			fmt.Fprintf(w, "  verdict:   %s\n", printable(e.Verdict))
		}
		for _, o := range e.Objects {
			if !sameObject(o.Object, ref) {
				continue
			}
			outcome := o.Outcome
			if o.Health != "" {
				outcome += ", " + o.Health
			}
			fmt.Fprintf(w, "  outcome:   %s\n", printable(outcome))
			if o.Error != "" {
				fmt.Fprintf(w, "  error:     %s\n", printable(o.Error))
			}
			for _, c := range o.Causes {
				fmt.Fprintf(w, "  drift:     %s\n", printable(c))
			}
			if o.Diff != "" {
				fmt.Fprintln(w, "  diff:")
				for _, line := range strings.Split(strings.TrimSuffix(o.Diff, "\n"), "\n") {
					fmt.Fprintf(w, "    %s\n", printable(line))
				}
			}
		}
	}
	return nil
}

// sameObject matches as the store's object filter does: kind in any case, any API version
// when the filter names none.
func sameObject(o, ref plan.ObjectRef) bool {
	return strings.EqualFold(o.Kind, ref.Kind) && o.Namespace == ref.Namespace && o.Name == ref.Name &&
		(ref.APIVersion == "" || o.APIVersion == ref.APIVersion)
}

// historyJSON writes the entries as a JSON array of history.Entry.
func historyJSON(w io.Writer, entries []history.Entry) error {
	if entries == nil {
		entries = []history.Entry{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(entries)
}

var csvHeader = []string{"seq", "at", "kind", "forge", "repo", "number", "issue", "url", "sha", "commit_url", "project", "cluster", "actor",
	"approvals", "verdict", "plan_hash", "state", "summary",
	"api_version", "object_kind", "namespace", "name", "outcome", "health", "error", "causes", "diff", "prev_hash", "hash"}

// historyCSV writes a header and one row per entry and object (an entry without objects: one
// row with the object's columns empty).
func historyCSV(w io.Writer, entries []history.Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, e := range entries {
		approvals := make([]string, len(e.Approvals))
		for i, a := range e.Approvals {
			approvals[i] = a.Reviewer + "@" + a.SHA
		}
		head := []string{strconv.FormatInt(e.Seq, 10), e.At.UTC().Format(time.RFC3339Nano), string(e.Kind), e.Forge, e.Repo, strconv.Itoa(e.Number),
			strconv.FormatBool(e.Issue), e.URL, e.SHA, e.CommitURL, e.Project, e.Cluster, e.Actor,
			strings.Join(approvals, " "), e.Verdict, e.PlanHash, e.State, e.Summary}
		objects := e.Objects
		if len(objects) == 0 {
			objects = []history.Object{{}}
		}
		for _, o := range objects {
			row := append(slices.Clone(head), o.Object.APIVersion, o.Object.Kind, o.Object.Namespace, o.Object.Name,
				o.Outcome, o.Health, o.Error, strings.Join(o.Causes, "\n"), o.Diff, e.PrevHash, e.Hash)
			for i := range row {
				row[i] = inertCell(row[i])
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// inertCell keeps a spreadsheet from running a cell as a formula (an attacker's object name or
// diff line starting with "="): such cells get a leading "'", as OWASP advises for CSV. Control
// characters but line breaks are replaced, as in text: a CSV is often read with cat.
func inertCell(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return unicode.ReplacementChar
		}
		return r
	}, s)
	if s != "" && strings.ContainsRune("=+-@\t", rune(s[0])) {
		return "'" + s
	}
	return s
}
