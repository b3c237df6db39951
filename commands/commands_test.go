package commands

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		body    string
		want    Command
		command bool
		err     string
	}{
		{"LGTM, ship it", Command{}, false, ""},
		{"see /plan below", Command{}, false, ""},
		{"", Command{}, false, ""},
		{"/ 42", Command{}, false, ""},
		{"/plan", Command{Name: "plan"}, true, ""},
		{"\n  /apply -p web-staging\nthanks!", Command{Name: "apply", Project: "web-staging"}, true, ""},
		{"/apply --project web -c prod-eu", Command{Name: "apply", Project: "web", Cluster: "prod-eu"}, true, ""},
		{"/UNLOCK -p web", Command{Name: "unlock", Project: "web"}, true, ""},
		{"/help", Command{Name: "help"}, true, ""},
		{"/aply -p web", Command{}, true, "`/aply` is not a kubeplan command. Did you mean `/apply`?"},
		{"/deploy", Command{}, true, "`/deploy` is not a kubeplan command."},
		{"/plan -x", Command{}, true, "unknown shorthand flag: 'x' in -x"},
		{"/plan -p", Command{}, true, "flag needs an argument"},
		{"/plan web", Command{}, true, `unexpected "web" (flags are -p PROJECT and -c CLUSTER)`},
		{"/help -p web", Command{}, true, "`/help` takes no flags."},
	}
	for _, c := range cases {
		got, ok, err := Parse(c.body)
		if ok != c.command {
			t.Errorf("Parse(%q): command %v, want %v", c.body, ok, c.command)
			continue
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Parse(%q): error %v, want %q", c.body, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.body, got, err, c.want)
		}
	}
}

// A reply quotes a little of a bad command, never the whole of a huge comment: it must fit
// in a forge comment itself.
func TestErrorsQuoteLittleOfAHugeComment(t *testing.T) {
	for _, body := range []string{"/plan " + strings.Repeat("web ", 20000), "/plan -p " + strings.Repeat("x", 80000) + " -q", "/" + strings.Repeat("deploy", 20000)} {
		_, ok, err := Parse(body)
		if !ok || err == nil {
			t.Fatalf("Parse(%.40q…): %v %v, want a refusal", body, ok, err)
		}
		if n := len(err.Error()); n > maxReason || !strings.Contains(err.Error(), "…") {
			t.Errorf("Parse(%.40q…): a reason of %d bytes: %.300q", body, n, err.Error())
		}
	}
}
