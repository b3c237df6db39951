package repoconfig

import (
	"path"
	"strings"
	"testing"
)

// Any .kubeplan.yaml a pull request may carry: Parse does not panic, and what it accepts keeps
// every project inside the repository with a valid name, whatever the YAML.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"version: 1\nprojects:\n- name: web\n  dir: apps/web\n  clusters: [prod]\n",
		"projects:\n- {name: web, dir: /../../etc, renderer: helm, helm: {release: x, values: [../../v.yaml]}}\n",
		"projects:\n- {name: a, dir: 'a/../../b', when_modified: ['**/*.yaml', '[']}\n",
		"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
		"drafts: skip\nprojects: []\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), FileName+": ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, p := range c.Projects {
			if !projectName.MatchString(p.Name) {
				t.Fatalf("accepted project name %q", p.Name)
			}
			if p.Dir == ".." || strings.HasPrefix(p.Dir, "../") || path.IsAbs(p.Dir) {
				t.Fatalf("accepted dir %q outside the repository", p.Dir)
			}
			p.Touches([]string{"apps/web/x.yaml", "README.md"}) // must not panic on any accepted glob
		}
	})
}
