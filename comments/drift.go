package comments

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/driftreport"
)

// DriftMarker starts the hidden first line of a drift issue, which names the repository,
// project and cluster it is about: kubeplan finds its open issue by it.
const DriftMarker = "<!-- kubeplan:drift "

// DriftIssueMarker is the drift issue's hidden line for one repository × project × cluster.
// The names are JSON, whose escaping of < and > keeps any name from ending the HTML comment.
func DriftIssueMarker(repo, project, cluster string) string {
	b, _ := json.Marshal(struct {
		Repo    string `json:"repo"`
		Project string `json:"project"`
		Cluster string `json:"cluster"`
	}{repo, project, cluster})
	return DriftMarker + string(b) + " -->"
}

// DriftIssueLabel is the label drift issues carry, for people to filter on (kubeplan finds
// its issue by the marker, not the label).
const DriftIssueLabel = "kubeplan-drift"

// DriftIssueTitle is the drift issue's title.
func DriftIssueTitle(project, cluster string) string {
	return fmt.Sprintf("kubeplan: drift on %s / %s", cluster, project)
}

// DriftIssue is what a drift issue shows: the drift of one project on one cluster.
type DriftIssue struct {
	Repo   string
	Report *driftreport.Report
	// Limit is the most characters the issue body may hold (the forge client's
	// MaxIssueLength); 0 means no limit.
	Limit int
}

// DriftIssueBody is the issue's body: the hidden marker, a summary table, one collapsible
// section per object with who changed which field and the diff (Secret values hidden, as in
// the report), and a footer. It depends on the report alone, not on when it was checked, so
// that the same drift seen again renders the same body and the issue is left alone.
//
// The body is one text edited in place: objects that do not fit in the limit are named in a
// list at the end (and, when even that does not fit, counted), never continued in comments,
// which would pile up in the issue's timeline with every edit. An object's diff too long on
// its own is cut with a note.
func DriftIssueBody(in DriftIssue) string {
	r := in.Report
	const footer = "\n---\n<sub>kubeplan checks the default branch against the cluster on a schedule and edits this issue while the drift lasts; " +
		"it closes the issue when the drift is gone. `kubeplan drift` shows the same from a checkout.</sub>\n"
	// What the objects' sections may fill: the rest is kept for the list of those left out.
	end := limitOr(in.Limit) - len(footer)
	budget := end - 600
	var b strings.Builder
	b.WriteString(DriftIssueMarker(in.Repo, r.Project, r.Cluster) + "\n")
	fmt.Fprintf(&b, "### kubeplan: drift on `%s` / `%s`\n\n", code(r.Cluster), code(r.Project))
	at := ""
	if r.Commit != "" {
		at = fmt.Sprintf(" at `%s`", short(r.Commit))
	}
	fmt.Fprintf(&b, "The cluster no longer matches git%s: %s.\n\n", at, driftreport.Escape(r.Summary()))
	c := r.Counts()
	b.WriteString("| ~ changed | + missing | - extra | owned by design | ignored | not checked | checked |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d |\n\n", c.Changed, c.Missing, c.Extra, c.ByDesign, len(r.Ignored), len(r.Failed), r.Checked)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- _note:_ %s\n", driftreport.Escape(n))
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	var left []driftreport.Object
	for i, o := range r.Objects {
		block := driftreport.MarkdownObject(o)
		if room := budget - b.Len(); len(block) > room {
			// An object larger than half of what a body holds is cut to fit in that half (or
			// what is left), so that one huge diff leaves room for the others; the rest wait
			// for the list at the end.
			keep := min(room, budget/2) - (len(block) - len(o.Diff))
			if len(block) > budget/2 && o.Diff != "" && keep > 1000 {
				o.Diff = cutLines(o.Diff, keep, "diff lines", "an issue", "Run `kubeplan drift` for all of it.")
				b.WriteString(driftreport.MarkdownObject(o))
				continue
			}
			left = r.Objects[i:]
			break
		}
		b.WriteString(block)
	}
	if rest := driftreport.MarkdownUnreported(r); b.Len()+len(rest) <= budget {
		b.WriteString(rest)
	}
	if len(left) > 0 {
		fmt.Fprintf(&b, "\n✂ %d more objects do not fit in an issue; `kubeplan drift` shows all of them:\n", len(left))
		const more = "- … and 1000000 more\n"
		for i, o := range left {
			line := fmt.Sprintf("- %s %s\n", o.State, driftreport.Escape(o.Object.String()))
			if b.Len()+len(line)+len(more) > end {
				fmt.Fprintf(&b, "- … and %d more\n", len(left)-i)
				break
			}
			b.WriteString(line)
		}
	}
	b.WriteString(footer)
	return b.String()
}

// DriftGone is the note a drift issue is closed with.
func DriftGone(at time.Time, commit string) string {
	s := "✅ Drift is gone as of " + at.UTC().Format("2006-01-02 15:04:05 UTC")
	if commit != "" {
		s += fmt.Sprintf(", checked at `%s`", short(commit))
	}
	return s + ": the cluster matches git again. kubeplan opens a new issue if it drifts again.\n"
}

// cutLines keeps the whole lines of text that fit in room characters and ends with a line
// saying how much was cut and where to see all of it (hint): never a silent truncation.
func cutLines(text string, room int, what, where, hint string) string {
	lines := strings.SplitAfter(strings.TrimSuffix(text, "\n"), "\n")
	const noteRoom = 160
	var kept strings.Builder
	n := 0
	for _, l := range lines {
		if kept.Len()+len(l)+1 > room-noteRoom {
			break
		}
		kept.WriteString(l)
		n++
	}
	fmt.Fprintf(&kept, "\n# ✂ cut: %d of %d %s shown; the rest does not fit in %s. %s\n", n, len(lines), what, where, hint)
	return kept.String()
}

// code keeps a name inside an inline code span.
func code(s string) string { return strings.ReplaceAll(s, "`", "'") }

// DriftIssueMarkerOf returns the drift marker a body starts with (its first non-blank line,
// as DriftIssueBody writes it), or "" when the body does not start with one.
func DriftIssueMarkerOf(body string) string {
	line, _, _ := strings.Cut(strings.TrimLeft(body, " \t\r\n"), "\n")
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, DriftMarker) || !strings.HasSuffix(line, " -->") {
		return ""
	}
	return line
}

// ParseDriftIssueMarker reads the repository, project and cluster a drift marker names; ok
// is false for anything DriftIssueMarker would not have written.
func ParseDriftIssueMarker(marker string) (repo, project, cluster string, ok bool) {
	inner, found := strings.CutPrefix(marker, DriftMarker)
	if inner, found = strings.CutSuffix(inner, " -->"); !found {
		return "", "", "", false
	}
	var m struct {
		Repo    string `json:"repo"`
		Project string `json:"project"`
		Cluster string `json:"cluster"`
	}
	if err := json.Unmarshal([]byte(inner), &m); err != nil || m.Repo == "" || m.Project == "" || m.Cluster == "" ||
		DriftIssueMarker(m.Repo, m.Project, m.Cluster) != marker {
		return "", "", "", false
	}
	return m.Repo, m.Project, m.Cluster, true
}
