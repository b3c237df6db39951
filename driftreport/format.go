package driftreport

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/kubeplan/kubeplan/report"
)

const (
	missingReason = "not in the cluster (deleted out of band, or never applied)"
	extraReason   = "in the cluster, gone from git (not pruned yet, or pruning is off)"
	revertNote    = "mode revert: reverted by kubeplan serve's scheduled check where the server allows it; kubeplan drift only reports"
	ignoredLabel  = "not reported (" + Annotation + ": ignore)"
)

func symbol(s State) string {
	switch s {
	case Missing:
		return "+"
	case Extra:
		return "-"
	}
	return "~"
}

// headline is an object's line: state, object, and what qualifies it.
func headline(o Object) string {
	return fmt.Sprintf("%s %-8s %s", symbol(o.State), o.State, o.Object) + qualifiers(o)
}

// qualifiers say what kind of drift the object has and what its mode does.
func qualifiers(o Object) string {
	var s string
	switch {
	case o.State == Missing:
		s += " — " + missingReason
	case o.State == Extra:
		s += " — " + extraReason
	case !o.Counted():
		s += " — owned by design, not counted"
	}
	if len(o.SecretKeys) > 0 {
		s += " (secret keys: " + strings.Join(o.SecretKeys, ", ") + ")"
	}
	if o.Mode == Revert {
		s += " — " + revertNote
	}
	return s
}

// fieldLines are what an object's fields say, one line each.
func fieldLines(o Object) []string {
	var out []string
	for _, f := range o.Fields {
		out = append(out, f.String())
	}
	if o.State == Changed && len(o.Fields) == 0 {
		out = append(out, "differs from git; no field could be named (Secret values not compared?)")
	}
	return out
}

// subtitle is the summary's tail: how much was checked, what was not counted.
func (r *Report) subtitle() string {
	c := r.Counts()
	s := fmt.Sprintf("%d objects checked", r.Checked)
	if r.Checked == 1 {
		s = "1 object checked"
	}
	if c.ByDesign > 0 {
		s += fmt.Sprintf(", %d owned by design", c.ByDesign)
	}
	if len(r.Ignored) > 0 {
		s += fmt.Sprintf(", %d ignored", len(r.Ignored))
	}
	return s
}

// TextOptions control terminal output.
type TextOptions struct{ Color bool }

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// Text writes the report for a terminal: summary, objects with their fields, then each diff.
func Text(w io.Writer, r *Report, o TextOptions) error {
	paint := func(code, s string) string {
		if !o.Color || s == "" {
			return s
		}
		return code + s + ansiReset
	}
	stateColor := map[State]string{Missing: ansiGreen, Changed: ansiYellow, Extra: ansiRed}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)\n", paint(ansiBold, r.Summary()), r.subtitle())
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	if len(r.Objects)+len(r.Failed)+len(r.Ignored) > 0 {
		b.WriteString("\n")
	}
	for _, obj := range r.Objects {
		b.WriteString(paint(stateColor[obj.State], "  "+headline(obj)) + "\n")
		for _, l := range fieldLines(obj) {
			b.WriteString("      " + l + "\n")
		}
	}
	for _, f := range r.Failed {
		b.WriteString(paint(ansiRed+ansiBold, fmt.Sprintf("  ! %-8s %s — %s", "unchecked", f.Object, firstLine(f.Reason))) + "\n")
	}
	for _, ref := range r.Ignored {
		fmt.Fprintf(&b, "  = %-8s %s — %s\n", "ignored", ref, ignoredLabel)
	}
	for _, obj := range r.Objects {
		if obj.Diff == "" {
			continue
		}
		fmt.Fprintf(&b, "\n%s\n", paint(ansiBold, fmt.Sprintf("%s %s (%s)", symbol(obj.State), obj.Object, obj.State)))
		for _, l := range strings.SplitAfter(obj.Diff, "\n") {
			line := strings.TrimSuffix(l, "\n")
			switch {
			case l == "":
			case strings.HasPrefix(l, "+++") || strings.HasPrefix(l, "---"):
				b.WriteString(paint(ansiBold, line) + "\n")
			case strings.HasPrefix(l, "@@"):
				b.WriteString(paint(ansiCyan, line) + "\n")
			case strings.HasPrefix(l, "+"):
				b.WriteString(paint(ansiGreen, line) + "\n")
			case strings.HasPrefix(l, "-"):
				b.WriteString(paint(ansiRed, line) + "\n")
			default:
				b.WriteString(line + "\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Markdown writes the report as GitHub/GitLab-flavoured Markdown: summary heading, then one
// collapsible section per object with its fields and diff (self-contained, so a long report
// can be split between objects).
func Markdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#### %s\n\n%s.\n\n", report.Escape(r.Summary()), report.Escape(r.subtitle()))
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- _note:_ %s\n", report.Escape(n))
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	for _, o := range r.Objects {
		b.WriteString(MarkdownObject(o))
	}
	b.WriteString(MarkdownUnreported(r))
	_, err := io.WriteString(w, b.String())
	return err
}

// MarkdownObject is one object's collapsible section: its state, what qualifies it, who changed
// which field, and its diff (Secret values already hidden). Self-contained, so a text that must
// fit a limit can stop between objects.
func MarkdownObject(o Object) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary><code>%s %s</code> %s</summary>\n\n", symbol(o.State), html.EscapeString(o.Object.String()),
		html.EscapeString(string(o.State)+qualifiers(o)))
	for _, l := range fieldLines(o) {
		fmt.Fprintf(&b, "- %s\n", report.Escape(l))
	}
	if len(o.Fields) > 0 || o.State == Changed {
		b.WriteString("\n")
	}
	if o.Diff != "" {
		b.WriteString(report.Fence("diff", o.Diff))
	}
	b.WriteString("</details>\n\n")
	return b.String()
}

// MarkdownUnreported lists, one line each, the objects that could not be checked and those
// whose mode is ignore.
func MarkdownUnreported(r *Report) string {
	var b strings.Builder
	for _, f := range r.Failed {
		fmt.Fprintf(&b, "- ❗ %s not checked: %s\n", report.Escape(f.Object.String()), report.Escape(firstLine(f.Reason)))
	}
	for _, ref := range r.Ignored {
		fmt.Fprintf(&b, "- %s %s\n", report.Escape(ref.String()), report.Escape(ignoredLabel))
	}
	return b.String()
}

// Escape keeps cluster- and git-controlled text from being read as Markdown or HTML.
func Escape(s string) string { return report.Escape(s) }

// JSON writes the report with its summary, counts and signature.
func JSON(w io.Writer, r *Report) error {
	c := r.Counts()
	out := struct {
		*Report
		Summary   string `json:"summary"`
		Drifted   bool   `json:"drifted"`
		Signature string `json:"signature,omitempty"`
		Counts    struct {
			Changed  int `json:"changed"`
			Missing  int `json:"missing"`
			Extra    int `json:"extra"`
			ByDesign int `json:"byDesign"`
		} `json:"counts"`
	}{Report: r, Summary: r.Summary(), Drifted: r.Drifted(), Signature: r.Signature()}
	out.Counts.Changed, out.Counts.Missing, out.Counts.Extra, out.Counts.ByDesign = c.Changed, c.Missing, c.Extra, c.ByDesign
	if out.Objects == nil {
		cp := *r
		cp.Objects = []Object{}
		out.Report = &cp
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
