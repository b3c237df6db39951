// Package report formats plans for people and programs: terminal text (coloured on a TTY),
// Markdown for forge comments, and JSON.
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/kubeplan/kubeplan/plan"
)

// symbol is the one-character mark of an action, as in the terminal and comments.
func symbol(a plan.Action) string {
	switch a {
	case plan.Create:
		return "+"
	case plan.Update:
		return "~"
	case plan.Delete:
		return "-"
	case plan.Fail:
		return "!"
	default:
		return "="
	}
}

// Warnings lists what a reviewer must not miss, one line per item, object first.
func Warnings(p *plan.Plan) []string {
	var out []string
	for _, ch := range p.Changes {
		switch {
		case ch.Destructive:
			out = append(out, fmt.Sprintf("%s will be deleted (%s) — DESTRUCTIVE: %s", ch.Object, ch.Reason, Takes(ch)))
		case ch.Action == plan.Delete:
			out = append(out, fmt.Sprintf("%s will be deleted (%s)", ch.Object, ch.Reason))
		case ch.Action == plan.Fail:
			out = append(out, fmt.Sprintf("%s: %s", ch.Object, ch.Reason))
		}
		for _, w := range ch.Warnings {
			out = append(out, fmt.Sprintf("%s %s", ch.Object, w))
		}
		for _, f := range ch.Findings {
			if f.Severity == plan.Warn {
				out = append(out, fmt.Sprintf("%s: policy rule %q warns: %s", ch.Object, f.Rule, f.Message))
			} else {
				out = append(out, fmt.Sprintf("%s is denied by policy rule %q: %s", ch.Object, f.Rule, f.Message))
			}
		}
	}
	return out
}

// Takes says what a destructive deletion takes down: "takes down everything in it: 42
// objects (30 Pod, …)" for a Namespace, "takes down every Gizmo.example.com: 3 objects" for
// a CRD.
func Takes(ch plan.Change) string {
	if ch.Object.Kind == "Namespace" {
		return "takes down everything in it: " + ch.Cascade.String()
	}
	return "takes down every custom resource of it: " + ch.Cascade.String()
}

// Destructive lists the plan's destructive deletions, one line each: object and what it takes down.
func Destructive(p *plan.Plan) []string {
	var out []string
	for _, ch := range p.Destructive() {
		out = append(out, fmt.Sprintf("%s %s", ch.Object, Takes(ch)))
	}
	return out
}

// jsonCounts and jsonPlan are a plan as JSON writes it.
type jsonCounts struct {
	Create    int `json:"create"`
	Update    int `json:"update"`
	Delete    int `json:"delete"`
	Unchanged int `json:"unchanged"`
	Fail      int `json:"fail"`
}

type jsonPlan struct {
	*plan.Plan
	Hash     string     `json:"hash"`
	Summary  string     `json:"summary"`
	Counts   jsonCounts `json:"counts"`
	Warnings []string   `json:"warnings,omitempty"`
	// Destructive lists deletions of Namespaces and CRDs with what they take down.
	Destructive []string `json:"destructive,omitempty"`
}

// JSON writes the plans with their hashes and counts.
func JSON(w io.Writer, plans ...*plan.Plan) error {
	list := make([]jsonPlan, 0, len(plans))
	for _, p := range plans {
		c := p.Counts()
		list = append(list, jsonPlan{Plan: p, Hash: p.Hash(), Summary: p.Summary(),
			Counts: jsonCounts{c.Create, c.Update, c.Delete, c.Unchanged, c.Fail}, Warnings: Warnings(p), Destructive: Destructive(p)})
	}
	if len(list) == 1 {
		if len(list[0].Changes) > 0 {
			return encodeChangeByChange(w, list[0])
		}
		return encodeWhole(w, list[0])
	}
	return encodeWhole(w, list)
}

// encodeWhole writes v as indented JSON.
func encodeWhole(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// changesKey is where the changes go in p's indented JSON.
const changesKey = "\n  \"changes\": ["

// encodeChangeByChange writes the bytes encodeWhole writes for p, a change at a time: a plan
// of thousands of objects made whole as JSON (compact, then indented: twice) was the peak of
// memory of `kubeplan plan -o json`.
func encodeChangeByChange(w io.Writer, p jsonPlan) error {
	changes := p.Changes
	shell := *p.Plan
	shell.Changes = []plan.Change{}
	p.Plan = &shell
	var head bytes.Buffer
	if err := encodeWhole(&head, p); err != nil {
		return err
	}
	before, after, ok := bytes.Cut(head.Bytes(), []byte(changesKey+"]"))
	if !ok {
		return fmt.Errorf("plan JSON: no changes key in %.200s", head.Bytes())
	}
	bw := bufio.NewWriter(w)
	bw.Write(before)
	bw.WriteString(changesKey)
	var compact, indented bytes.Buffer
	enc := json.NewEncoder(&compact)
	enc.SetEscapeHTML(false)
	for i := range changes {
		compact.Reset()
		indented.Reset()
		if err := enc.Encode(&changes[i]); err != nil {
			return fmt.Errorf("plan JSON: %s: %w", changes[i].Object, err)
		}
		if err := json.Indent(&indented, bytes.TrimSuffix(compact.Bytes(), []byte("\n")), "    ", "  "); err != nil {
			return fmt.Errorf("plan JSON: %s: %w", changes[i].Object, err)
		}
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n    ")
		bw.Write(indented.Bytes())
	}
	bw.WriteString("\n  ]")
	bw.Write(after)
	return bw.Flush()
}

// TextOptions control terminal output.
type TextOptions struct {
	Color bool
	// ShowUnchanged lists unchanged objects too.
	ShowUnchanged bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// Text writes a plan for a terminal: summary, object list, warnings, then each diff.
func Text(w io.Writer, p *plan.Plan, o TextOptions) error {
	paint := func(code, s string) string {
		if !o.Color || s == "" {
			return s
		}
		return code + s + ansiReset
	}
	actionColor := map[plan.Action]string{plan.Create: ansiGreen, plan.Update: ansiYellow, plan.Delete: ansiRed, plan.Fail: ansiRed + ansiBold}

	var b strings.Builder
	c := p.Counts()
	fmt.Fprintf(&b, "%s", paint(ansiBold, p.Summary()))
	if c.Unchanged > 0 {
		fmt.Fprintf(&b, " (%d unchanged)", c.Unchanged)
	}
	b.WriteString("\n")
	for _, d := range Destructive(p) {
		b.WriteString(paint(ansiBold+ansiRed, "  DESTRUCTIVE: "+d) + "\n")
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	if len(p.Changes) > 0 {
		b.WriteString("\n")
	}
	for _, ch := range p.Changes {
		if ch.Action == plan.Unchanged && !o.ShowUnchanged {
			continue
		}
		line := fmt.Sprintf("  %s %-9s %s", symbol(ch.Action), ch.Action, ch.Object)
		if ch.Reason != "" && ch.Action != plan.Fail && ch.Action != plan.Delete {
			line += " — " + ch.Reason
		}
		if len(ch.SecretKeys) > 0 {
			line += " (secret keys set or removed: " + strings.Join(ch.SecretKeys, ", ") + ")"
		}
		b.WriteString(paint(actionColor[ch.Action], line) + "\n")
	}
	if ws := Warnings(p); len(ws) > 0 {
		b.WriteString("\n" + paint(ansiBold+ansiYellow, "Warnings:") + "\n")
		for _, w := range ws {
			b.WriteString("  ! " + w + "\n")
		}
	}
	for _, ch := range p.Changes {
		if ch.Diff == "" {
			continue
		}
		fmt.Fprintf(&b, "\n%s\n", paint(ansiBold, fmt.Sprintf("%s %s (%s)", symbol(ch.Action), ch.Object, ch.Action)))
		for _, l := range strings.SplitAfter(ch.Diff, "\n") {
			switch {
			case l == "":
			case strings.HasPrefix(l, "+++") || strings.HasPrefix(l, "---"):
				b.WriteString(paint(ansiBold, strings.TrimSuffix(l, "\n")) + "\n")
			case strings.HasPrefix(l, "@@"):
				b.WriteString(paint(ansiCyan, strings.TrimSuffix(l, "\n")) + "\n")
			case strings.HasPrefix(l, "+"):
				b.WriteString(paint(ansiGreen, strings.TrimSuffix(l, "\n")) + "\n")
			case strings.HasPrefix(l, "-"):
				b.WriteString(paint(ansiRed, strings.TrimSuffix(l, "\n")) + "\n")
			default:
				b.WriteString(l)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
