// Package commands parses the commands people write in pull-request comments:
// /plan, /apply, /unlock and /help, each with optional -p PROJECT and -c CLUSTER.
package commands

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"
)

// Command is one parsed command.
type Command struct {
	Name    string // plan, apply, unlock, help
	Project string
	Cluster string
}

// Names are the commands kubeplan knows.
var Names = []string{"plan", "apply", "unlock", "help"}

// Help is the reply to /help and the hint after a mistake.
const Help = "`/plan [-p PROJECT] [-c CLUSTER]` plans again · `/apply [-p PROJECT] [-c CLUSTER]` applies · " +
	"`/unlock [-p PROJECT] [-c CLUSTER]` releases a lock · `/help` shows this"

// Error is a command kubeplan recognised as meant for it but cannot run as written.
type Error struct{ Reason string }

func (e *Error) Error() string { return e.Reason }

// Parse reads a comment. A comment whose first non-blank line does not start with "/" and a
// letter is not a command (ok false) and is ignored. A command that is unknown or has bad
// flags returns an *Error that says what to write instead.
func Parse(body string) (cmd Command, ok bool, err error) {
	line := ""
	for _, l := range strings.Split(body, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			line = l
			break
		}
	}
	if len(line) < 2 || line[0] != '/' || !isLetter(line[1]) {
		return Command{}, false, nil
	}
	fields := strings.Fields(line)
	name := strings.ToLower(strings.TrimPrefix(fields[0], "/"))
	known := false
	for _, n := range Names {
		known = known || n == name
	}
	if !known {
		hint := ""
		if s := closest(name); s != "" {
			hint = fmt.Sprintf(" Did you mean `/%s`?", s)
		}
		return Command{}, true, &Error{Reason: fmt.Sprintf("`/%s` is not a kubeplan command.%s", clip(name), hint)}
	}
	cmd.Name = name
	fs := pflag.NewFlagSet("/"+name, pflag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.StringVarP(&cmd.Project, "project", "p", "", "project")
	fs.StringVarP(&cmd.Cluster, "cluster", "c", "", "cluster")
	if err := fs.Parse(fields[1:]); err != nil {
		return Command{}, true, &Error{Reason: fmt.Sprintf("`%s`: %s.", clip(line), clip(err.Error()))}
	}
	if fs.NArg() > 0 {
		return Command{}, true, &Error{Reason: fmt.Sprintf("`%s`: unexpected %q (flags are -p PROJECT and -c CLUSTER).", clip(line), clip(strings.Join(fs.Args(), " ")))}
	}
	if name == "help" && (cmd.Project != "" || cmd.Cluster != "") {
		return Command{}, true, &Error{Reason: "`/help` takes no flags."}
	}
	return cmd, true, nil
}

// maxReason bounds an error's reason: it is quoted back in a reply, which must fit a forge
// comment however long the comment it answers.
const maxReason = 600

// clip shortens what a reply quotes from a comment.
func clip(s string) string {
	const keep = 200
	if len(s) <= keep {
		return s
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// closest suggests the known command nearest to a typo (edit distance at most 2).
func closest(name string) string {
	best, bestDist := "", 3
	for _, n := range Names {
		if d := distance(name, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance between two short words.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
