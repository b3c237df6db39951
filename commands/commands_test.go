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
