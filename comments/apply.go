package comments

import (
	"fmt"
	"strings"

	"github.com/kubeplan/kubeplan/outcome"
)

// ApplyMarker starts every apply result comment (one per project × cluster and apply).
const ApplyMarker = "<!-- kubeplan:apply -->"

// Apply is one apply of a project on a cluster, for its result comment.
type Apply struct {
	Project, Cluster string
	SHA              string
	Actor            string // who asked: the commenter, or the merger for a roll-out
	OnMerge          bool
	Result           *outcome.Result // nil when Err is set
	Err              string          // one line: why nothing could be applied
	Notes            []string
	// Limit is the most characters the comment may hold, as for Input; 0 means no limit.
	Limit int
}

// RenderApply writes an apply's result comment: a summary line, then every object that did
// not stay unchanged with what happened to it and its health. When the list does not fit in
// the forge's limit, the rest is counted in a final line: never a silent truncation.
func RenderApply(a Apply) string {
	limit := limitOr(a.Limit)
	var b strings.Builder
	b.WriteString(ApplyMarker + "\n")
	what := "Applied"
	if a.OnMerge {
		what = "Rolled out on merge:"
	}
	title := fmt.Sprintf("%s / %s", a.Cluster, a.Project)
	switch {
	case a.Result == nil:
		fmt.Fprintf(&b, "### ❌ kubeplan could not apply %s at `%s`\n\n", html(title), short(a.SHA))
		b.WriteString(codeBlock(a.Err) + "\n")
	case a.Result.Failed():
		fmt.Fprintf(&b, "### ❌ %s %s at `%s` — failed\n\n", what, html(title), short(a.SHA))
	default:
		fmt.Fprintf(&b, "### ✅ %s %s at `%s`\n\n", what, html(title), short(a.SHA))
	}
	switch {
	case a.Actor != "" && a.OnMerge:
		fmt.Fprintf(&b, "Merged by @%s.\n\n", a.Actor)
	case a.Actor != "":
		fmt.Fprintf(&b, "Requested by @%s.\n\n", a.Actor)
	}
	for _, n := range a.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(a.Notes) > 0 {
		b.WriteString("\n")
	}
	if a.Result == nil {
		return b.String()
	}
	r := a.Result
	b.WriteString("**" + r.Counts().String() + "**")
	if r.HealthTimedOut {
		b.WriteString(" — ⏱ health wait timed out")
	}
	b.WriteString("\n\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- _note:_ %s\n", html(n))
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}

	const footerRoom = 400
	header := "| Object | Result | Health |\n|---|---|---|\n"
	var rows strings.Builder
	shown, left := 0, 0
	for _, o := range r.Objects {
		if o.Action == outcome.Unchanged && (o.Health == "" || o.Health == "Current") {
			continue // counted above; a healthy unchanged object is not news
		}
		result := string(o.Action)
		if o.Error != "" {
			result += ": " + firstLine(o.Error)
		}
		health := o.Health
		if o.HealthMessage != "" && o.Health != "Current" {
			health += ": " + firstLine(o.HealthMessage)
		}
		row := fmt.Sprintf("| `%s` | %s | %s |\n", cell(o.Object.String()), cell(result), cell(health))
		if b.Len()+len(header)+rows.Len()+len(row) > limit-footerRoom {
			left++
			continue
		}
		rows.WriteString(row)
		shown++
	}
	if shown > 0 {
		b.WriteString(header + rows.String())
	}
	if left > 0 {
		fmt.Fprintf(&b, "\n_✂ %d more objects do not fit in a comment; kubeplan's log lists every object of every apply._\n", left)
	}
	// Healthy unchanged objects, folded away, when the whole list fits.
	var unchanged strings.Builder
	n := 0
	for _, o := range r.Objects {
		if o.Action == outcome.Unchanged && (o.Health == "" || o.Health == "Current") {
			fmt.Fprintf(&unchanged, "`%s` ", html(o.Object.String()))
			n++
		}
	}
	if n > 0 && left == 0 {
		block := fmt.Sprintf("\n<details><summary>%d unchanged</summary>\n\n%s\n</details>\n", n, strings.TrimSpace(unchanged.String()))
		if b.Len()+len(block) <= limit-footerRoom {
			b.WriteString(block)
		}
	}
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
