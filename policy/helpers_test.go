package policy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// fakeDir is a Directory backed by a map of team → members; teams in fail return errBoom.
type fakeDir struct {
	members map[string][]string
	fail    map[string]bool
	calls   int
}

var errBoom = errors.New("directory unavailable")

func (d *fakeDir) IsMember(_ context.Context, team, user string) (bool, error) {
	d.calls++
	if d.fail[team] {
		return false, errBoom
	}
	return slices.ContainsFunc(d.members[team], func(m string) bool { return strings.EqualFold(m, user) }), nil
}

func newDir() *fakeDir {
	return &fakeDir{members: map[string][]string{
		"org/sre":       {"alice", "sam"},
		"org/deployers": {"dan"},
		"org/platform":  {"pat"},
		"org/dba":       {"dora"},
	}}
}

// mustConfig parses a YAML policy section.
func mustConfig(t *testing.T, y string) Config {
	t.Helper()
	c, err := ParseConfig([]byte(y))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	return c
}

// mustCompile compiles a server policy (and a repository's, when repo is not empty).
func mustCompile(t *testing.T, server, repo string) *Policy {
	t.Helper()
	var rc *Config
	if repo != "" {
		c := mustConfig(t, repo)
		rc = &c
	}
	p, err := Compile(mustConfig(t, server), rc)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}
