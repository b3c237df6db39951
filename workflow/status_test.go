package workflow

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kubeplan/kubeplan/forge"
)

// Every status description kubeplan sets is one line the forges accept: at most
// forge.MaxStatusDescription characters (not bytes), cut with "…" when longer.
func TestStatusDescriptionsFitTheForges(t *testing.T) {
	long := strings.Repeat("é", forge.MaxStatusDescription+1)
	for _, c := range []struct{ name, in, want string }{
		{"short", "Planning…", "Planning…"},
		{"lines", "kubeplan could not plan: render apps/web:\nline 3", "kubeplan could not plan: render apps/web: line 3"},
		{"exactly the limit", long[:len(long)-len("é")], long[:len(long)-len("é")]},
		{"over the limit", long, strings.Repeat("é", forge.MaxStatusDescription-1) + "…"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := description(c.in)
			if got != c.want {
				t.Errorf("description(%q) = %q, want %q", c.in, got, c.want)
			}
			if n := utf8.RuneCountInString(got); n > forge.MaxStatusDescription || strings.Contains(got, "\n") {
				t.Errorf("%d characters or more than one line: %q", n, got)
			}
		})
	}
}
