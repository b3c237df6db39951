package policy

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kubeplan/kubeplan/forge"
)

func loadFixture(t *testing.T) CodeOwners {
	t.Helper()
	co, err := LoadCodeOwners(os.DirFS("testdata/repo"))
	if err != nil {
		t.Fatal(err)
	}
	if co.File() != ".github/CODEOWNERS" {
		t.Fatalf("loaded %q, want .github/CODEOWNERS first", co.File())
	}
	return co
}

func TestCodeOwnersMatch(t *testing.T) {
	co := loadFixture(t)
	for _, tc := range []struct {
		file string
		want [][]string
	}{
		{"main.go", [][]string{{"@org/platform"}}},
		{"apps/web/deploy.yaml", [][]string{{"@wendy"}}},
		{"/apps/web/deploy.yaml", [][]string{{"@wendy"}}},
		{"apps/web/charts/README.md", nil},
		{"apps/web/prod/deploy.yaml", [][]string{{"@org/sre"}}},
		{"apps/db/prod/values.yaml", [][]string{{"@org/sre"}}},
		{"apps/db/schema.sql", [][]string{{"@org/dba", "@bob"}}},
		{"docs/guide.md", nil},
		{"legacy/old.yaml", [][]string{{"legacy-owner@example.com"}}},
	} {
		got, err := co.Owners(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Owners(%s) = %q, want %q", tc.file, got, tc.want)
		}
	}
}

func TestLoadCodeOwnersLocations(t *testing.T) {
	fsys := fstest.MapFS{
		"CODEOWNERS":         {Data: []byte("* @root-file\n")},
		"docs/CODEOWNERS":    {Data: []byte("* @docs-file\n")},
		".gitlab/CODEOWNERS": {Data: []byte("* @gitlab-file\n")},
	}
	co, err := LoadCodeOwners(fsys)
	if err != nil || co.File() != "CODEOWNERS" {
		t.Fatalf("got %q, %v; want CODEOWNERS before docs/ and .gitlab/", co.File(), err)
	}
	delete(fsys, "CODEOWNERS")
	if co, _ = LoadCodeOwners(fsys); co.File() != "docs/CODEOWNERS" {
		t.Errorf("got %q, want docs/CODEOWNERS", co.File())
	}
	delete(fsys, "docs/CODEOWNERS")
	if co, _ = LoadCodeOwners(fsys); co.File() != ".gitlab/CODEOWNERS" {
		t.Errorf("got %q, want .gitlab/CODEOWNERS", co.File())
	}
	co, err = LoadCodeOwners(fstest.MapFS{"README.md": {}})
	if err != nil || !co.IsZero() {
		t.Errorf("no file: %+v, %v", co, err)
	}
	if _, err := LoadCodeOwners(fstest.MapFS{"CODEOWNERS": {Data: []byte("* not-an-owner!\n")}}); err == nil ||
		!strings.HasPrefix(err.Error(), "CODEOWNERS: line 1:") {
		t.Errorf("bad file: %v", err)
	}
}

func TestGitLabCodeOwners(t *testing.T) {
	co, err := ParseCodeOwners(".gitlab/CODEOWNERS", []byte(`
* @group/platform/core
[Database][2] @group/dba
/db/
/db/migrations/ @dora.d
^[Docs] @writers/docs
/docs/
[Roles]
/ops/ @@maintainer
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		want [][]string
	}{
		{"db/x.sql", [][]string{{"@group/platform/core"}, {"@group/dba"}}},
		{"db/migrations/1.sql", [][]string{{"@group/platform/core"}, {"@dora.d"}}},
		{"docs/a.md", [][]string{{"@group/platform/core"}}}, // optional section ignored
		{"ops/run.sh", [][]string{{"@group/platform/core"}, {"@@maintainer"}}},
	} {
		got, err := co.Owners(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Owners(%s) = %q, want %q", tc.file, got, tc.want)
		}
	}
}

func TestApprovalsCodeOwners(t *testing.T) {
	co := loadFixture(t)
	p := mustCompile(t, "approvals: [{name: owners, codeOwners: true}]", "")
	for _, tc := range []struct {
		name      string
		files     []string
		approvers []string
		satisfied bool
		summary   string
		detail    string
	}{
		{name: "user owner approves", files: []string{"apps/web/deploy.yaml"}, approvers: []string{"Wendy"}, satisfied: true},
		{name: "user owner missing", files: []string{"apps/web/deploy.yaml", "apps/web/svc.yaml"}, approvers: []string{"carol"},
			summary: "1 approval, needs a code owner (@wendy) for 2 files",
			detail:  `approval rule "owners" (everywhere): needs a code owner's approval (@wendy) for apps/web/deploy.yaml, apps/web/svc.yaml`},
		{name: "team owner approves", files: []string{"main.go"}, approvers: []string{"pat"}, satisfied: true},
		{name: "team owner missing", files: []string{"main.go"}, approvers: []string{"alice"},
			detail: "needs a code owner's approval (@org/platform) for main.go"},
		{name: "nested pattern wins over its parent", files: []string{"apps/web/prod/deploy.yaml"}, approvers: []string{"wendy"},
			detail: "needs a code owner's approval (@org/sre) for apps/web/prod/deploy.yaml"},
		{name: "nested pattern team member", files: []string{"apps/web/prod/deploy.yaml"}, approvers: []string{"sam"}, satisfied: true},
		{name: "any of several owners", files: []string{"apps/db/schema.sql"}, approvers: []string{"Bob"}, satisfied: true},
		{name: "any of several owners, team", files: []string{"apps/db/schema.sql"}, approvers: []string{"dora"}, satisfied: true},
		{name: "unowned files need nobody", files: []string{"docs/guide.md", "apps/web/charts/README.md"}, satisfied: true},
		{name: "every owned file needs its owner", files: []string{"apps/web/deploy.yaml", "main.go"}, approvers: []string{"wendy"},
			detail: "(@org/platform) for main.go"},
		{name: "email owners cannot be matched", files: []string{"legacy/old.yaml"}, approvers: []string{"alice"},
			detail: "code owners legacy-owner@example.com cannot be matched to forge logins"},
		{name: "author cannot own-approve", files: []string{"apps/db/schema.sql"}, approvers: []string{"mallory"},
			detail: "(@org/dba or @bob) for apps/db/schema.sql; @mallory's own approval does not count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reviews []forge.Review
			for _, a := range tc.approvers {
				reviews = append(reviews, approve(a, head))
			}
			pr := PullRequest{Author: "mallory", HeadSHA: head, ChangedFiles: tc.files, Reviews: reviews}
			st, err := p.Approvals(context.Background(), newDir(), pr, co, []Target{{Project: "web", Cluster: "staging"}})
			if err != nil {
				t.Fatal(err)
			}
			if st.Satisfied != tc.satisfied {
				t.Errorf("satisfied = %v, want %v: %s", st.Satisfied, tc.satisfied, st.Details)
			}
			if tc.summary != "" && st.Summary != tc.summary {
				t.Errorf("summary = %q, want %q", st.Summary, tc.summary)
			}
			if tc.detail != "" && !strings.Contains(strings.Join(st.Details, "\n"), tc.detail) {
				t.Errorf("details %q\nwant them to contain %q", st.Details, tc.detail)
			}
		})
	}

	// Without a CODEOWNERS file nothing is owned.
	st, err := p.Approvals(context.Background(), newDir(), PullRequest{HeadSHA: head, ChangedFiles: []string{"x"}}, CodeOwners{}, []Target{{Project: "a", Cluster: "b"}})
	if err != nil || !st.Satisfied || !strings.Contains(st.Details[0], "no CODEOWNERS file") {
		t.Errorf("no CODEOWNERS: %+v, %v", st, err)
	}
}
