package report

import (
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/kubeplan/kubeplan/plan"
)

// Markdown writes a plan as GitHub/GitLab-flavoured Markdown: summary heading, warnings up
// front, then one collapsible section per changed object.
func Markdown(w io.Writer, p *plan.Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#### %s\n\n", Escape(p.Summary()))
	b.WriteString(MarkdownNotes(p))
	for _, ch := range p.Changes {
		if ch.Action == plan.Unchanged {
			continue
		}
		b.WriteString(MarkdownObject(ch))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// MarkdownNotes is what a plan says before its objects: unchanged count, warnings, notes.
func MarkdownNotes(p *plan.Plan) string {
	var b strings.Builder
	c := p.Counts()
	if c.Unchanged > 0 {
		fmt.Fprintf(&b, "%d unchanged.\n\n", c.Unchanged)
	}
	if ds := Destructive(p); len(ds) > 0 {
		b.WriteString("> [!CAUTION]\n> **Destructive:** these deletions take down more than this project's inventory. kubeplan applies them only for a project with `apply.allow_destructive: true`, where an approval rule covers it and is met.\n>\n")
		for _, d := range ds {
			fmt.Fprintf(&b, "> - 💥 %s\n", Escape(d))
		}
		b.WriteString("\n")
	}
	if ws := Warnings(p); len(ws) > 0 {
		b.WriteString("> [!WARNING]\n")
		for _, w := range ws {
			fmt.Fprintf(&b, "> - %s\n", Escape(w))
		}
		b.WriteString("\n")
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "- _note:_ %s\n", Escape(n))
	}
	if len(p.Notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// MarkdownObject is one object's collapsible section: action, reason, secret keys and diff.
// It is self-contained (balanced <details>, closed fences) so comments can split between objects.
func MarkdownObject(ch plan.Change) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary><code>%s %s</code> %s", symbol(ch.Action), html.EscapeString(ch.Object.String()), ch.Action)
	if ch.Reason != "" {
		fmt.Fprintf(&b, " — %s", html.EscapeString(firstLine(ch.Reason)))
	}
	if ch.Destructive {
		fmt.Fprintf(&b, " — 💥 <b>destructive</b>: %s", html.EscapeString(Takes(ch)))
	}
	b.WriteString("</summary>\n\n")
	if ch.Action == plan.Fail {
		b.WriteString(Fence("text", ch.Reason))
	}
	if len(ch.SecretKeys) > 0 {
		fmt.Fprintf(&b, "Secret keys set or removed: %s (values hidden and never compared with the live ones)\n\n", Escape(strings.Join(ch.SecretKeys, ", ")))
	}
	if ch.Diff != "" {
		b.WriteString(Fence("diff", ch.Diff))
	}
	b.WriteString("</details>\n\n")
	return b.String()
}

// Fence wraps text in a code fence longer than any backtick run inside it, so content
// cannot close the fence early.
func Fence(lang, text string) string {
	longest, run := 0, 0
	for _, r := range text {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	f := strings.Repeat("`", max(3, longest+1))
	return f + lang + "\n" + strings.TrimSuffix(text, "\n") + "\n" + f + "\n\n"
}

// Escape keeps user-controlled text (object names, cluster and git content) from being read
// as Markdown or HTML.
func Escape(s string) string {
	r := strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;", "*", "\\*", "_", "\\_", "`", "\\`", "[", "\\[", "]", "\\]", "|", "\\|")
	return r.Replace(s)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
