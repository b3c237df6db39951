package ui

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/plan"
)

// The templates' functions. None returns template.HTML: every value from the history
// (object names, diffs, summaries, all written by whoever opened a pull request) reaches the
// page through html/template's escaping.
func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"when":       when,
		"ago":        func(t time.Time) string { return ago(u.opts.Now(), t) },
		"safeURL":    safeURL,
		"short":      short,
		"diffLines":  diffLines,
		"objectLink": objectLink,
		"entryLink":  func(seq int64) string { return "/ui/entries/" + strconv.FormatInt(seq, 10) },
		"about":      about,
		"tone":       tone,
		"repoName":   repoName,
		"kindLabel":  func(k history.Kind) string { return strings.ReplaceAll(string(k), "_", " ") },
	}
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ago says how long before now t was, roughly: "just now", "5 min ago", "3 h ago", "4 days ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return ""
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
	}
}

// safeURL is u when it is an absolute http(s) URL, else "": a link back to the forge is
// rendered only then (never javascript:, data: or a relative path from the record).
func safeURL(s string) string {
	p, err := url.Parse(s)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return ""
	}
	return p.String()
}

func short(sha string) string { return sha[:min(len(sha), 12)] }

// line is one line of a diff and its CSS class: add, del, hunk or ctx.
type line struct{ Class, Text string }

func diffLines(diff string) []line {
	diff = strings.TrimSuffix(diff, "\n")
	if diff == "" {
		return nil
	}
	raw := strings.Split(diff, "\n")
	out := make([]line, len(raw))
	for i, l := range raw {
		class := "ctx"
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			class = "file"
		case strings.HasPrefix(l, "+"):
			class = "add"
		case strings.HasPrefix(l, "-"):
			class = "del"
		case strings.HasPrefix(l, "@@"):
			class = "hunk"
		}
		out[i] = line{Class: class, Text: l}
	}
	return out
}

// objectLink is the object's timeline on a cluster.
func objectLink(cluster string, o plan.ObjectRef) string {
	q := url.Values{"kind": {o.Kind}, "name": {o.Name}}
	if o.Namespace != "" {
		q.Set("namespace", o.Namespace)
	}
	if cluster != "" {
		q.Set("cluster", cluster)
	}
	return "/ui/objects?" + q.Encode()
}

// about names what an entry is about: "PR #12", "issue #7", or "" for a drift check without
// an issue.
func about(e history.Entry) string {
	switch {
	case e.Number == 0:
		return ""
	case e.Issue:
		return "issue #" + strconv.Itoa(e.Number)
	case e.Forge == "gitlab":
		return "MR !" + strconv.Itoa(e.Number)
	}
	return "PR #" + strconv.Itoa(e.Number)
}

// tone is the CSS class of a state or outcome: good, bad, warn or plain. Only these four
// classes ever reach the page, whatever the record says.
func tone(state string) string {
	switch strings.ToLower(state) {
	case "succeeded", "applied", "clean", "allowed", "created", "configured", "pruned", "current", "planned", "unchanged", "resolved":
		return "good"
	case "failed", "refused", "error", "fail":
		return "bad"
	case "drifted", "changed", "missing", "extra", "interrupted", "inprogress", "delete", "locked":
		return "warn"
	}
	return "plain"
}

// repoName is org/repo of a forge:org/repo key, with the forge when not GitHub.
func repoName(key string) string {
	forge, name, ok := strings.Cut(key, ":")
	if !ok || forge == "github" {
		return name
	}
	return name + " (" + forge + ")"
}
