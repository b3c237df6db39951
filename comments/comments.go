// Package comments writes the pull-request comment that carries kubeplan's plans: a summary
// table, one collapsible section per project × cluster with per-object diffs, and a footer.
// Long plans are split across numbered comments at object boundaries, each valid Markdown on
// its own; an object too large for one comment is cut with a note saying so.
package comments

import (
	"fmt"
	"math"
	"strings"

	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/report"
)

// Marker starts every comment kubeplan posts with plans, so it finds and updates its own
// comments instead of adding new ones. It is an HTML comment: invisible when rendered.
const Marker = "<!-- kubeplan:plan"

// Target is one project × cluster: its plan, or the error that stopped it.
type Target struct {
	Project, Cluster string
	Plan             *plan.Plan // nil when Err is set
	Err              string     // one line: what failed, naming the file or cluster
}

// Input is everything one plan comment shows.
type Input struct {
	HeadSHA  string
	Targets  []Target
	Commands []string // footer lines, e.g. "`/apply` applies every project that allows it"
	// Notes are shown under the table (locks, skipped projects…).
	Notes []string
	// Limit is the most characters a comment may hold: the forge client's MaxCommentLength
	// (the forges' limits live in package forge). 0 means no limit.
	Limit int
}

// Render returns the comment bodies: the first is the main comment, the others its
// continuations. Each fits in the limit and is valid Markdown on its own.
func Render(in Input) []string {
	limit := limitOr(in.Limit)
	// Room kept in every part for the marker, the part line and a closing </details>.
	const reserve = 300
	budget := limit - reserve

	head := header(in)
	foot := footer(in)
	var parts []string
	var cur strings.Builder
	cur.WriteString(head)
	openSection := "" // the <details> opening of the section in progress, to reopen in the next part

	flush := func() {
		if openSection != "" {
			cur.WriteString("</details>\n\n")
		}
		parts = append(parts, cur.String())
		cur.Reset()
		if openSection != "" {
			cur.WriteString(strings.Replace(openSection, "</summary>", " (continued)</summary>", 1))
		}
	}
	add := func(block string) {
		if cur.Len()+len(block) > budget && cur.Len() > 0 {
			flush()
		}
		cur.WriteString(block)
	}

	for _, t := range in.Targets {
		// An object must fit in a part beside the continuation header and the reopened section.
		open, blocks := section(t, budget-len(head)-200)
		add(open + blocks[0]) // never a section opened with nothing in it
		openSection = open
		for _, b := range blocks[1:] {
			add(b)
		}
		openSection = ""
		add("</details>\n\n")
	}
	if cur.Len()+len(foot) > budget {
		flush()
	}
	cur.WriteString(foot)
	parts = append(parts, cur.String())

	out := make([]string, len(parts))
	for i, p := range parts {
		tag := fmt.Sprintf("%s part=%d/%d -->\n", Marker, i+1, len(parts))
		if len(parts) > 1 && i > 0 {
			p = fmt.Sprintf("**kubeplan plan for `%s` — part %d of %d** (continued from the comment above)\n\n", short(in.HeadSHA), i+1, len(parts)) + p
		}
		if len(parts) > 1 && i < len(parts)-1 {
			p += fmt.Sprintf("\n_Continued in part %d of %d._\n", i+2, len(parts))
		}
		out[i] = tag + p
	}
	return out
}

// ParsePart reads the part number and count from a comment body kubeplan wrote; ok is false
// for any other comment.
func ParsePart(body string) (part, of int, ok bool) {
	if !strings.HasPrefix(body, Marker) {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(body[len(Marker):], " part=%d/%d -->", &part, &of); err != nil {
		return 0, 0, false
	}
	return part, of, true
}

func header(in Input) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### kubeplan plan for `%s`\n\n", short(in.HeadSHA))
	if len(in.Targets) == 0 {
		b.WriteString("No project is affected by this change.\n\n")
		return b.String()
	}
	b.WriteString("| Project | Cluster | + create | ~ change | - delete | Status |\n|---|---|---:|---:|---:|---|\n")
	for _, t := range in.Targets {
		if t.Plan == nil {
			fmt.Fprintf(&b, "| %s | %s | | | | ❌ error |\n", cell(t.Project), cell(t.Cluster))
			continue
		}
		c := t.Plan.Counts()
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %s |\n", cell(t.Project), cell(t.Cluster), c.Create, c.Update, c.Delete, status(t.Plan))
	}
	b.WriteString("\n")
	for _, n := range in.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(in.Notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

func status(p *plan.Plan) string {
	c := p.Counts()
	var s string
	switch {
	case c.Fail > 0:
		s = fmt.Sprintf("❌ %d failing", c.Fail)
	case len(p.Denials()) > 0:
		s = "⛔ denied by policy"
	case c.Delete > 0 || len(report.Warnings(p)) > 0:
		s = "⚠️ review warnings"
	case c.HasChanges():
		s = "✅ changes"
	default:
		s = "✅ no changes"
	}
	// Whatever else holds, a destructive deletion is never out of sight.
	if d := len(p.Destructive()); d > 0 {
		s = fmt.Sprintf("💥 **%d destructive** · %s", d, s)
	}
	return s
}

// section is the opening of a target's collapsible section and its blocks (header, then one
// per changed object), each of which may start a new comment part. An object's block larger
// than max is re-rendered with its diff cut to fit.
func section(t Target, max int) (string, []string) {
	if t.Plan == nil {
		open := fmt.Sprintf("<details open><summary><b>%s / %s — error</b></summary>\n\n", html(t.Cluster), html(t.Project))
		return open, []string{codeBlock(t.Err) + "\n"}
	}
	open := fmt.Sprintf("<details><summary><b>%s</b></summary>\n\n", html(t.Plan.Summary()))
	if d := len(t.Plan.Destructive()); d > 0 {
		// Open, and saying so in its title: nobody should have to unfold a section to find this.
		what := "1 destructive deletion"
		if d > 1 {
			what = fmt.Sprintf("%d destructive deletions", d)
		}
		open = fmt.Sprintf("<details open><summary><b>%s — 💥 %s</b></summary>\n\n", html(t.Plan.Summary()), what)
	}
	blocks := []string{report.MarkdownNotes(t.Plan)}
	for _, ch := range t.Plan.Changes {
		if ch.Action == plan.Unchanged {
			continue
		}
		block := report.MarkdownObject(ch)
		if len(block) > max-len(open) {
			block = report.MarkdownObject(cutDiff(ch, max-len(open)-(len(block)-len(ch.Diff))))
		}
		blocks = append(blocks, block)
	}
	return open, blocks
}

// cutDiff keeps the whole lines of a change's diff that fit in room characters and ends it
// with a line saying how much was cut: never a silent truncation.
func cutDiff(ch plan.Change, room int) plan.Change {
	ch.Diff = cutLines(ch.Diff, room, "diff lines", "a comment", "Run `kubeplan plan` locally for all of it.")
	return ch
}

func footer(in Input) string {
	var b strings.Builder
	b.WriteString("---\n")
	for _, c := range in.Commands {
		fmt.Fprintf(&b, "%s  \n", c)
	}
	b.WriteString("<sub>Planned by kubeplan at `" + short(in.HeadSHA) + "`. This comment is updated in place on every push.</sub>\n")
	return b.String()
}

// codeBlock shows s as it is, in a fenced block that s cannot close.
func codeBlock(s string) string {
	return "```text\n" + strings.ReplaceAll(s, "```", "'''") + "\n```\n"
}

// limitOr is a comment's length limit: no limit for 0.
func limitOr(limit int) int {
	if limit <= 0 {
		return math.MaxInt
	}
	return limit
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func cell(s string) string { return strings.ReplaceAll(html(s), "|", "\\|") }

func html(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
