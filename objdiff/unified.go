package objdiff

import (
	"fmt"
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// Unified returns a unified diff (3 lines of context) from a to b, labelled with the two
// names; "" when they are equal. Line matching is sergi/go-diff's; hunks are built here.
func Unified(fromName, toName, a, b string) string {
	if a == b {
		return ""
	}
	dmp := diffmatchpatch.New()
	ca, cb, lines := dmp.DiffLinesToChars(a, b)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)

	type line struct {
		op   diffmatchpatch.Operation
		text string
	}
	var all []line
	for _, d := range diffs {
		for _, l := range splitLines(d.Text) {
			all = append(all, line{d.Type, l})
		}
	}

	const context = 3
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", fromName, toName)
	// Walk the lines, opening a hunk at the first change and closing it once more than
	// 2*context equal lines separate it from the next change.
	aLine, bLine := 1, 1
	for i := 0; i < len(all); {
		if all[i].op == diffmatchpatch.DiffEqual {
			i++
			aLine++
			bLine++
			continue
		}
		start := max(i-context, 0)
		aLine -= i - start // rewind to the hunk's first context line
		bLine -= i - start
		end := i
		for end < len(all) {
			if all[end].op != diffmatchpatch.DiffEqual {
				end++
				continue
			}
			run := end
			for run < len(all) && all[run].op == diffmatchpatch.DiffEqual {
				run++
			}
			if run == len(all) || run-end > 2*context {
				end = min(end+context, len(all))
				break
			}
			end = run
		}
		var body strings.Builder
		aCount, bCount := 0, 0
		for _, l := range all[start:end] {
			switch l.op {
			case diffmatchpatch.DiffEqual:
				body.WriteString(" " + l.text + "\n")
				aCount++
				bCount++
			case diffmatchpatch.DiffDelete:
				body.WriteString("-" + l.text + "\n")
				aCount++
			case diffmatchpatch.DiffInsert:
				body.WriteString("+" + l.text + "\n")
				bCount++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n%s", hunkRange(aLine, aCount), hunkRange(bLine, bCount), body.String())
		aLine += aCount
		bLine += bCount
		i = end
	}
	return out.String()
}

// hunkRange formats a unified-diff range; an empty range names the line before it.
func hunkRange(start, count int) string {
	if count == 0 {
		return fmt.Sprintf("%d,0", start-1)
	}
	if count == 1 {
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, count)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
