package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/hmarr/codeowners"
)

// CodeOwnersFiles are where a CODEOWNERS file is looked for, first found wins.
var CodeOwnersFiles = []string{".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS"}

// maxCodeOwnersSize is GitHub's limit; a larger file is refused rather than half-read.
const maxCodeOwnersSize = 3 << 20

// CodeOwners are the owners of a checkout's files. The zero value has no owners.
//
// Load them from the pull request's base, not its head: otherwise a pull request could make
// itself its own code owner.
type CodeOwners struct {
	file     string
	sections []ownerSection
}

// ownerSection is GitHub's whole file, or one GitLab [Section]. Within a section the last
// matching pattern decides; every required section's owners must approve.
type ownerSection struct {
	name  string
	rules codeowners.Ruleset
}

// Owner kinds beyond the library's: GitLab roles ("@@maintainer") can't be matched either.
const roleOwner = "role"

var (
	ownerEmail = regexp.MustCompile(`^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$`)
	ownerRole  = regexp.MustCompile(`^@@[A-Za-z0-9_-]+$`)
	ownerTeam  = regexp.MustCompile(`^@([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+)$`)
	ownerUser  = regexp.MustCompile(`^@([A-Za-z0-9_.-]+)$`)
	// GitLab section headers: "[Name]", "^[Optional]", "[Name][2] @default @owners".
	sectionHeader = regexp.MustCompile(`^(\^?)\[([^\]]*)\](\[\d+\])?\s*(.*)$`)
)

// ownerMatchers accept GitHub owners and GitLab's (nested groups, dotted logins, roles).
var ownerMatchers = []codeowners.OwnerMatcher{
	codeowners.OwnerMatchFunc(func(s string) (codeowners.Owner, error) {
		if ownerEmail.MatchString(s) {
			return codeowners.Owner{Value: s, Type: codeowners.EmailOwner}, nil
		}
		return codeowners.Owner{}, codeowners.ErrNoMatch
	}),
	codeowners.OwnerMatchFunc(func(s string) (codeowners.Owner, error) {
		if ownerRole.MatchString(s) {
			return codeowners.Owner{Value: s[2:], Type: roleOwner}, nil
		}
		return codeowners.Owner{}, codeowners.ErrNoMatch
	}),
	codeowners.OwnerMatchFunc(func(s string) (codeowners.Owner, error) {
		if m := ownerTeam.FindStringSubmatch(s); m != nil {
			return codeowners.Owner{Value: m[1], Type: codeowners.TeamOwner}, nil
		}
		return codeowners.Owner{}, codeowners.ErrNoMatch
	}),
	codeowners.OwnerMatchFunc(func(s string) (codeowners.Owner, error) {
		if m := ownerUser.FindStringSubmatch(s); m != nil {
			return codeowners.Owner{Value: m[1], Type: codeowners.UsernameOwner}, nil
		}
		return codeowners.Owner{}, codeowners.ErrNoMatch
	}),
}

// LoadCodeOwners reads the first of .github/CODEOWNERS, CODEOWNERS, docs/CODEOWNERS and
// .gitlab/CODEOWNERS in a checkout. No file gives the zero CodeOwners and no error.
func LoadCodeOwners(fsys fs.FS) (CodeOwners, error) {
	for _, name := range CodeOwnersFiles {
		info, err := fs.Stat(fsys, name)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && info.IsDir()) {
			continue
		}
		if err != nil {
			return CodeOwners{}, fmt.Errorf("%s: %w", name, err)
		}
		if info.Size() > maxCodeOwnersSize {
			return CodeOwners{}, fmt.Errorf("%s: larger than %d bytes", name, maxCodeOwnersSize)
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return CodeOwners{}, fmt.Errorf("%s: %w", name, err)
		}
		return ParseCodeOwners(name, data)
	}
	return CodeOwners{}, nil
}

// ParseCodeOwners reads a CODEOWNERS file; file names it in errors and details.
func ParseCodeOwners(file string, data []byte) (CodeOwners, error) {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	type raw struct {
		name     string
		optional bool
		defaults []codeowners.Owner
		lines    []string // the whole file's lines, blank outside the section: line numbers stay right
	}
	cur := &raw{lines: make([]string, len(lines))}
	all := []*raw{cur}
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if m := sectionHeader.FindStringSubmatch(t); m != nil && !strings.HasPrefix(t, "#") {
			cur = &raw{name: strings.TrimSpace(m[2]), optional: m[1] == "^", lines: make([]string, len(lines))}
			for _, f := range strings.Fields(m[4]) {
				if strings.HasPrefix(f, "#") {
					break
				}
				o, err := matchOwner(f)
				if err != nil {
					return CodeOwners{}, fmt.Errorf("%s: line %d: %w", file, i+1, err)
				}
				cur.defaults = append(cur.defaults, o)
			}
			all = append(all, cur)
			continue
		}
		cur.lines[i] = l
	}
	co := CodeOwners{file: file}
	for _, s := range all {
		if s.optional {
			continue // optional GitLab sections never block
		}
		rules, err := codeowners.ParseFile(strings.NewReader(strings.Join(s.lines, "\n")), codeowners.WithOwnerMatchers(ownerMatchers))
		if err != nil {
			return CodeOwners{}, fmt.Errorf("%s: %w", file, err)
		}
		if len(rules) == 0 {
			continue
		}
		if len(s.defaults) > 0 {
			for i := range rules {
				if len(rules[i].Owners) == 0 {
					rules[i].Owners = s.defaults
				}
			}
		}
		co.sections = append(co.sections, ownerSection{name: s.name, rules: rules})
	}
	return co, nil
}

func matchOwner(s string) (codeowners.Owner, error) {
	for _, m := range ownerMatchers {
		if o, err := m.Match(s); err == nil {
			return o, nil
		}
	}
	return codeowners.Owner{}, codeowners.ErrInvalidOwnerFormat{Owner: s}
}

// File is the CODEOWNERS file these came from, "" for none.
func (c CodeOwners) File() string { return c.file }

// IsZero reports whether there are no owners at all.
func (c CodeOwners) IsZero() bool { return len(c.sections) == 0 }

// Owners returns the owner sets a file needs approval from: one per section with a matching
// pattern that names owners ("@alice", "@org/team", "a@example.com"). Nil means unowned.
func (c CodeOwners) Owners(file string) ([][]string, error) {
	reqs, err := c.requirements(file)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, r := range reqs {
		var set []string
		for _, o := range r.owners {
			set = append(set, ownerString(o))
		}
		out = append(out, set)
	}
	return out, nil
}

type ownerRequirement struct {
	section string
	owners  []codeowners.Owner
}

func (c CodeOwners) requirements(file string) ([]ownerRequirement, error) {
	file = strings.TrimPrefix(file, "/")
	var out []ownerRequirement
	for _, s := range c.sections {
		rule, err := s.rules.Match(file)
		if err != nil {
			return nil, fmt.Errorf("%s: match %s: %w", c.file, file, err)
		}
		if rule != nil && len(rule.Owners) > 0 {
			out = append(out, ownerRequirement{section: s.name, owners: rule.Owners})
		}
	}
	return out, nil
}

// ownerString is "@alice", "@org/team", "@@maintainer" or "a@example.com".
func ownerString(o codeowners.Owner) string {
	switch o.Type {
	case codeowners.EmailOwner:
		return o.Value
	case roleOwner:
		return "@@" + o.Value
	default:
		return "@" + o.Value
	}
}
