package repoconfig

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestParseConfig(t *testing.T) {
	c, err := Parse([]byte(`version: 1
projects:
- name: web-prod
  dir: apps/web/overlays/prod
  clusters: [prod-eu, prod-us]
  namespace: web
  when_modified: ["apps/web/**", "lib/*.yaml"]
  apply: {before_merge: required, on_merge: false, force: true}
- name: shop
  dir: charts/shop
  renderer: helm
  helm: {release: shop, values: [values-prod.yaml]}
policy:
  rules:
  - {name: no-latest, expr: "true", message: x, severity: warn}
`))
	if err != nil {
		t.Fatal(err)
	}
	web, shop := c.Projects[0], c.Projects[1]
	if web.OnMerge() || !web.Prune() || web.BeforeMerge() != "required" || !web.Apply.Force || strings.Join(web.Clusters, ",") != "prod-eu,prod-us" {
		t.Errorf("web: %+v", web)
	}
	if shop.Helm.Release != "shop" || shop.Helm.Values[0] != "values-prod.yaml" || !shop.OnMerge() || shop.BeforeMerge() != "allowed" || shop.Apply.Force {
		t.Errorf("shop: %+v", shop)
	}
	if c.Policy == nil || c.Policy.Rules[0].Name != "no-latest" {
		t.Errorf("policy: %+v", c.Policy)
	}
	if got := names(c.Affected([]string{"apps/web/base/deploy.yaml"})); got != "web-prod" {
		t.Errorf("affected by a base change: %q", got)
	}
	if got := names(c.Affected([]string{"charts/shop/templates/x.yaml", "README.md"})); got != "shop" {
		t.Errorf("affected by a chart change: %q", got)
	}
	if got := names(c.Affected([]string{"docs/index.md"})); got != "" {
		t.Errorf("affected by docs: %q", got)
	}
}

func TestParseRejectsMistakesClearly(t *testing.T) {
	cases := map[string]string{
		"projects:\n- name: web\n  dir: a\n  clusterz: [x]\n":              `unknown field "clusterz"`,
		"projects:\n- name: Web_App\n  dir: a\n":                           `name "Web_App" must be lower-case`,
		"projects:\n- {name: a, dir: x}\n- {name: a, dir: y}\n":            `project "a" is defined twice`,
		"projects:\n- {name: a, dir: ../../etc}\n":                         "is outside the repository",
		"projects:\n- {name: a, dir: x, renderer: jsonnet}\n":              `unknown renderer "jsonnet"`,
		"projects:\n- {name: a, dir: x, apply: {before_merge: sometimes}}": `apply.before_merge "sometimes"`,
		"policy:\n  rulez: []\n":                                           `unknown field "rulez"`,
		"version: 3\n":                                                     "version 3 is not supported",
		"projects: [\n":                                                    ".kubeplan.yaml: ",
		"drift: {mode: silent}\n":                                          `drift.mode "silent" (want notify, ignore or revert)`,
		"drift: {modes: notify}\n":                                         `unknown field "modes"`,
		"drift: {ignore: [{manger: hpa}]}\n":                               `unknown field "manger"`,
		"drift: {ignore: [{}]}\n":                                          "drift.ignore[0] matches every field",
		"drift: {ignore: [{path: spec.replicas}]}\n":                       `drift.ignore[0].path "spec.replicas" must start with .`,
		"drift: {ignore: [{manager: x, operation: Patch}]}\n":              `drift.ignore[0].operation "Patch"`,
		"projects:\n- {name: a, dir: x, drift: {mode: loud}}\n":            `project a: drift.mode "loud"`,
		"drift: {interval: 10s}\n":                                         `drift.interval "10s" (want a duration of at least 1m`,
		"drift: {interval: often}\n":                                       `drift.interval "often"`,
	}
	for input, want := range cases {
		_, err := Parse([]byte(input))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), ".kubeplan.yaml: ") {
			t.Errorf("Parse(%q) = %v, want an error containing %q", input, err, want)
		}
	}
}

func TestDiscoverProjectsWithoutConfig(t *testing.T) {
	repo := fstest.MapFS{
		"README.md":                                   {Data: []byte("# repo")},
		"apps/web/base/kustomization.yaml":            {Data: []byte("resources: [deploy.yaml]\n")},
		"apps/web/base/deploy.yaml":                   {Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")},
		"apps/web/overlays/prod/kustomization.yaml":   {Data: []byte("resources: [../../base]\n")},
		"apps/web/overlays/staging/kustomization.yml": {Data: []byte("resources: [../../base]\n")},
		"charts/shop/Chart.yaml":                      {Data: []byte("apiVersion: v2\nname: shop\nversion: 0.1.0\n")},
		"charts/shop/templates/deploy.yaml":           {Data: []byte("apiVersion: apps/v1\nkind: Deployment\n")},
		"charts/shop/charts/redis/Chart.yaml":         {Data: []byte("apiVersion: v2\nname: redis\nversion: 1.0.0\n")},
		"infra/namespaces.yaml":                       {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")},
		"infra/rbac/roles.yaml":                       {Data: []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n")},
		".github/workflows/ci.yaml":                   {Data: []byte("on: push\n")},
		"config/settings.yaml":                        {Data: []byte("log_level: debug\n")},
	}
	c, err := Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Discovered {
		t.Error("not marked as discovered")
	}
	var got []string
	for _, p := range c.Projects {
		got = append(got, p.Name+"="+p.Dir+"("+p.Renderer+")")
	}
	want := "apps-web-overlays-prod=apps/web/overlays/prod(kustomize) apps-web-overlays-staging=apps/web/overlays/staging(kustomize) charts-shop=charts/shop(helm) infra=infra(yaml)"
	if strings.Join(got, " ") != want {
		t.Fatalf("discovered:\n  %s\nwant:\n  %s", strings.Join(got, " "), want)
	}
}

func TestLoadPrefersTheFile(t *testing.T) {
	c, err := Load(fstest.MapFS{
		".kubeplan.yaml": {Data: []byte("projects:\n- {name: only, dir: x}\n")},
		"y/a.yaml":       {Data: []byte("apiVersion: v1\nkind: ConfigMap\n")},
	})
	if err != nil || c.Discovered || names(c.Projects) != "only" {
		t.Fatalf("%v %+v", err, c)
	}
}

func names(ps []Project) string {
	var n []string
	for _, p := range ps {
		n = append(n, p.Name)
	}
	return strings.Join(n, ",")
}

// Drift settings: the repository's apply to every project; a project's mode and
// default_ignore replace them and its ignore rules add to them.
func TestDriftSettings(t *testing.T) {
	c, err := Parse([]byte(`drift:
  mode: revert
  interval: 2h
  ignore:
  - {manager: vpa-*, path: .spec.template.spec.containers}
projects:
- {name: web, dir: web}
- name: db
  dir: db
  drift:
    mode: notify
    interval: 10m
    default_ignore: false
    ignore: [{kinds: [StatefulSet], path: .spec.replicas, operation: Update, subresource: scale}]
`))
	if err != nil {
		t.Fatal(err)
	}
	web, db := c.Projects[0], c.Projects[1]
	cases := []struct {
		project       Project
		mode          string
		ignores       int
		defaultIgnore bool
	}{
		{web, "revert", 1, true},
		{db, "notify", 2, false},
	}
	for _, tc := range cases {
		if got := c.DriftMode(tc.project); got != tc.mode {
			t.Errorf("%s: mode %q, want %q", tc.project.Name, got, tc.mode)
		}
		if got := c.DriftIgnores(tc.project); len(got) != tc.ignores {
			t.Errorf("%s: ignores %+v, want %d", tc.project.Name, got, tc.ignores)
		}
		if got := c.DriftDefaultIgnore(tc.project); got != tc.defaultIgnore {
			t.Errorf("%s: default_ignore %v, want %v", tc.project.Name, got, tc.defaultIgnore)
		}
	}
	if c.DriftInterval(web) != 2*time.Hour || c.DriftInterval(db) != 10*time.Minute || (&Config{}).DriftInterval(web) != 0 {
		t.Errorf("intervals: web %s, db %s; want 2h (the repository's) and 10m (its own)", c.DriftInterval(web), c.DriftInterval(db))
	}
	if got := c.DriftIgnores(db)[1]; got.Kinds[0] != "StatefulSet" || got.Subresource != "scale" || got.Operation != "Update" {
		t.Errorf("db's own rule: %+v", got)
	}

	none := &Config{}
	if none.DriftMode(Project{}) != "notify" || !none.DriftDefaultIgnore(Project{}) || none.DriftIgnores(Project{}) != nil {
		t.Error("without drift settings: want notify, the default list and no rules of the project's")
	}
}

// The example in docs/configuration.md is a valid .kubeplan.yaml.
func TestDocumentedExampleParses(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "## Repository (`.kubeplan.yaml`")
	_, example, _ := strings.Cut(section, "```yaml\n")
	example, _, _ = strings.Cut(example, "```")
	c, err := Parse([]byte(example))
	if err != nil {
		t.Fatalf("%v\n%s", err, example)
	}
	if c.DriftMode(c.Projects[0]) != "revert" || len(c.DriftIgnores(c.Projects[0])) != 1 {
		t.Fatalf("drift settings of the example: %+v %+v", c.Drift, c.Projects[0].Drift)
	}
}
