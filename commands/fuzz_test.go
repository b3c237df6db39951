package commands

import (
	"strings"
	"testing"
)

// Any comment body: Parse does not panic, a command it returns is one kubeplan knows, and an
// error it returns fits in a reply whatever the comment held.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"/apply -p web", "/plan -c prod-eu -p web", "/aply", "/apply --force", "/help -p x",
		"looks good to me", "\n\n  /unlock -p web  \n/apply", "/apply " + strings.Repeat("x", 70000), "/" + strings.Repeat("z", 70000)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cmd, ok, err := Parse(body)
		if !ok {
			if err != nil || cmd != (Command{}) {
				t.Fatalf("not a command, yet %+v %v", cmd, err)
			}
			return
		}
		if err != nil {
			if len(err.Error()) > maxReason {
				t.Fatalf("error of %d bytes, over %d", len(err.Error()), maxReason)
			}
			return
		}
		known := false
		for _, n := range Names {
			known = known || cmd.Name == n
		}
		if !known {
			t.Fatalf("parsed unknown command %q", cmd.Name)
		}
	})
}
