package objdiff

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// applyUnified applies a diff produced by Unified to a, so tests can check that the diff is
// exactly the change from a to b, whatever hunks the line matcher chose.
func applyUnified(t *testing.T, a, diff string) string {
	t.Helper()
	src := splitLines(a)
	var out []string
	next := 0 // index in src of the next line not yet copied
	lines := strings.Split(strings.TrimSuffix(diff, "\n"), "\n")[2:]
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, "@@ ") {
			t.Fatalf("expected hunk header, got %q", l)
		}
		from := strings.Fields(l)[1][1:]
		start, _ := strconv.Atoi(strings.Split(from, ",")[0])
		if !strings.Contains(from, ",0") {
			start-- // 1-based line to 0-based index
		}
		out = append(out, src[next:start]...)
		next = start
		for i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "@@ ") {
			i++
			body := lines[i]
			switch body[0] {
			case ' ':
				if src[next] != body[1:] {
					t.Fatalf("context mismatch at %d: %q vs %q", next, src[next], body[1:])
				}
				out = append(out, body[1:])
				next++
			case '-':
				if src[next] != body[1:] {
					t.Fatalf("deleted line mismatch at %d: %q vs %q", next, src[next], body[1:])
				}
				next++
			case '+':
				out = append(out, body[1:])
			}
		}
	}
	out = append(out, src[next:]...)
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

func TestUnifiedRoundTrips(t *testing.T) {
	cases := []struct{ name, a, b string }{
		{"equal", "x\ny\n", "x\ny\n"},
		{"create", "", "a\nb\n"},
		{"delete", "a\nb\n", ""},
		{"middle change", "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n", "one\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\nfourteen\n"},
		{"empty lines kept", "a\n\nb\n", "a\n\n\nb\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Unified("live", "planned", c.a, c.b)
			if c.a == c.b {
				if d != "" {
					t.Fatalf("equal inputs gave a diff:\n%s", d)
				}
				return
			}
			if got := applyUnified(t, c.a, d); got != c.b {
				t.Fatalf("diff does not turn a into b:\n%s\ngot:\n%q\nwant:\n%q", d, got, c.b)
			}
		})
	}
}

func TestUnifiedRandomEdits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		var a, b []string
		for i := 0; i < r.IntN(40); i++ {
			line := "line" + strconv.Itoa(r.IntN(12))
			a = append(a, line)
			switch r.IntN(6) {
			case 0: // drop
			case 1:
				b = append(b, line, "new"+strconv.Itoa(i))
			case 2:
				b = append(b, "changed"+strconv.Itoa(i))
			default:
				b = append(b, line)
			}
		}
		as, bs := joinLines(a), joinLines(b)
		d := Unified("a", "b", as, bs)
		if as == bs {
			continue
		}
		if got := applyUnified(t, as, d); got != bs {
			t.Fatalf("case %d: diff does not turn a into b:\n%s", n, d)
		}
		for _, l := range strings.Split(d, "\n") {
			if strings.HasPrefix(l, "@@") && strings.Count(l, "@@") != 2 {
				t.Fatalf("bad hunk header %q", l)
			}
		}
	}
}

func joinLines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}
