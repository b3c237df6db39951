package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"testing"
)

func TestCascadeString(t *testing.T) {
	for _, tc := range []struct {
		c    *Cascade
		want string
	}{
		{nil, "an uncounted number of objects"},
		{&Cascade{}, "nothing else"},
		{&Cascade{Total: 1, Kinds: []KindCount{{"Secret", 1}}}, "1 object (1 Secret)"},
		{&Cascade{Total: 500, AtLeast: true, Kinds: []KindCount{{"Pod", 500}}}, "at least 500 objects (500 Pod)"},
		{&Cascade{Total: 3, AtLeast: true, Kinds: []KindCount{{"Pod", 3}}, Uncounted: []string{"metrics.k8s.io/v1beta1"}}, "at least 3 objects (3 Pod); not counted: metrics.k8s.io/v1beta1"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}

// What a namespace holds changes all the time and does not make a reviewed plan stale; whether a
// deletion is destructive is part of what was reviewed.
func TestHashIgnoresCascadeCounts(t *testing.T) {
	ns := ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "legacy"}
	p := &Plan{Project: "web", Cluster: "prod", Changes: []Change{{Object: ns, Action: Delete, Destructive: true, Cascade: &Cascade{Total: 3}}}}
	q := &Plan{Project: "web", Cluster: "prod", Changes: []Change{{Object: ns, Action: Delete, Destructive: true, Cascade: &Cascade{Total: 4}}}}
	if p.Hash() != q.Hash() {
		t.Error("a different count changed the hash")
	}
	if p.Changes[0].Cascade.Total != 3 {
		t.Error("Hash changed the plan")
	}
	q.Changes[0].Destructive = false
	if p.Hash() == q.Hash() {
		t.Error("the destructive mark is not part of the hash")
	}
	if !Destroys(ns) || !Destroys(ObjectRef{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "x.example.com"}) ||
		Destroys(ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "a", Name: "b"}) {
		t.Error("Destroys")
	}
}

// Hash is what /apply compares with the plan a reviewer saw: whatever the reviewer decided on
// must move it, and what does not change what applying does must not.
func TestHash(t *testing.T) {
	cm := ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "settings"}
	secret := ObjectRef{APIVersion: "v1", Kind: "Secret", Namespace: "shop", Name: "db"}
	ns := ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "legacy"}
	base := func() *Plan {
		return &Plan{Project: "web", Cluster: "prod", ClusterVersion: "v1.37.2", Renderer: "plain", Notes: []string{"a note"},
			Changes: []Change{
				{Object: ns, Action: Delete, Diff: "-ns", Destructive: true, Cascade: &Cascade{Total: 3}},
				{Object: cm, Action: Update, Diff: "-a\n+b", Source: "project/cm.yaml", Warnings: []string{"takes over .data.a from field manager \"kubectl\""}, Conflicts: true,
					Findings: []Finding{{Rule: "r", Severity: Warn, Message: "m"}}},
				{Object: secret, Action: Update, Diff: "(hidden)", SecretKeys: []string{"password"}, LiveSecretVersion: "41"},
			}}
	}
	for _, tc := range []struct {
		name    string
		change  func(p *Plan)
		changes bool
	}{
		{"nothing", func(*Plan) {}, false},
		{"notes", func(p *Plan) { p.Notes = append(p.Notes, "another note") }, false},
		{"cluster version", func(p *Plan) { p.ClusterVersion = "v1.38.0" }, false},
		{"renderer", func(p *Plan) { p.Renderer = "helm" }, false},
		{"cascade count", func(p *Plan) { p.Changes[0].Cascade = &Cascade{Total: 300, AtLeast: true} }, false},
		{"cascade unknown", func(p *Plan) { p.Changes[0].Cascade = nil }, false},

		{"project", func(p *Plan) { p.Project = "api" }, true},
		{"cluster", func(p *Plan) { p.Cluster = "staging" }, true},
		{"action", func(p *Plan) { p.Changes[1].Action = Create }, true},
		{"diff", func(p *Plan) { p.Changes[1].Diff = "-a\n+c" }, true},
		{"object namespace", func(p *Plan) { p.Changes[1].Object.Namespace = "other" }, true},
		{"object apiVersion", func(p *Plan) { p.Changes[1].Object.APIVersion = "v2" }, true},
		{"reason", func(p *Plan) { p.Changes[1].Reason = "will fail" }, true},
		{"warnings", func(p *Plan) { p.Changes[1].Warnings = nil }, true},
		{"conflicts", func(p *Plan) { p.Changes[1].Conflicts = false }, true},
		{"source", func(p *Plan) { p.Changes[1].Source = "project/other.yaml" }, true},
		{"finding severity", func(p *Plan) { p.Changes[1].Findings[0].Severity = Deny }, true},
		{"secret keys", func(p *Plan) { p.Changes[2].SecretKeys = []string{"password", "user"} }, true},
		{"live secret version", func(p *Plan) { p.Changes[2].LiveSecretVersion = "42" }, true},
		{"destructive", func(p *Plan) { p.Changes[0].Destructive = false }, true},
		{"one change more", func(p *Plan) {
			p.Changes = append(p.Changes, Change{Object: ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "new"}, Action: Create})
		}, true},
		{"one change less", func(p *Plan) { p.Changes = p.Changes[1:] }, true},
		{"unchanged object now listed", func(p *Plan) {
			p.Changes = append(p.Changes, Change{Object: ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "same"}, Action: Unchanged})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			tc.change(p)
			if changed := p.Hash() != base().Hash(); changed != tc.changes {
				t.Errorf("hash changed: %v, want %v", changed, tc.changes)
			}
		})
	}
}

// The planner sorts its changes (Plan.Sort): the order objects were rendered in does not move
// the hash of a sorted plan.
func TestHashIgnoresTheOrderOfChanges(t *testing.T) {
	a := Change{Object: ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "a"}, Action: Create}
	b := Change{Object: ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"}, Action: Update}
	n := Change{Object: ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "shop"}, Action: Unchanged}
	s := Change{Object: ObjectRef{APIVersion: "v1", Kind: "Secret", Namespace: "shop", Name: "db"}, Action: Update, LiveSecretVersion: "7"}
	p := &Plan{Project: "web", Cluster: "prod", Changes: []Change{a, b, n, s}}
	q := &Plan{Project: "web", Cluster: "prod", Changes: []Change{s, n, b, a}}
	if p.Hash() != q.Hash() {
		t.Error("the order of the changes changed the hash")
	}
	// Sorting, as the planner does, changes nothing either: stored hashes stay valid.
	before := p.Hash()
	p.Sort()
	if p.Hash() != before {
		t.Error("sorting the plan changed its hash")
	}
	if h := p.Hash(); h != p.Hash() || len(h) != 64 {
		t.Errorf("hash %q is not a stable sha256", h)
	}
}

// Hash writes the JSON to the hash a change at a time; the bytes must be those of the whole
// content marshalled at once, as earlier versions hashed it, or every stored plan's hash (and
// the approvals given to it) would go stale.
func TestHashIsOfTheContentsJSON(t *testing.T) {
	oldHash := func(p *Plan) string {
		var secretVersions []string
		changes := make([]Change, len(p.Changes))
		for i, ch := range p.Changes {
			if ch.LiveSecretVersion != "" {
				secretVersions = append(secretVersions, ch.Object.String()+"@"+ch.LiveSecretVersion)
			}
			ch.Cascade = nil
			changes[i] = ch
		}
		sort.SliceStable(changes, func(i, j int) bool { return ApplyOrder(changes[i].Object, changes[j].Object) })
		sort.Strings(secretVersions)
		b, err := json.Marshal(hashContent{p.Project, p.Cluster, changes, secretVersions})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	cm := ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "settings"}
	secret := ObjectRef{APIVersion: "v1", Kind: "Secret", Namespace: "shop", Name: "db"}
	for _, tc := range []struct {
		name string
		plan *Plan
	}{
		{"no changes", &Plan{Project: "web", Cluster: "prod"}},
		{"changes, HTML and non-ASCII text", &Plan{Project: "<web>", Cluster: "prod&co", Changes: []Change{
			{Object: cm, Action: Update, Diff: "-a: <b>\n+a: \"é\" & ü\u2028", Warnings: []string{"x"}, Findings: []Finding{{Rule: "r", Severity: Warn, Message: "m"}}},
			{Object: ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "shop"}, Action: Delete, Destructive: true, Cascade: &Cascade{Total: 2}},
		}}},
		{"secret versions", &Plan{Project: "web", Cluster: "prod", Changes: []Change{
			{Object: secret, Action: Update, Diff: "(hidden)", SecretKeys: []string{"password"}, LiveSecretVersion: "41"},
			{Object: cm, Action: Unchanged},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := tc.plan.Hash(), oldHash(tc.plan); got != want {
				t.Errorf("Hash = %s, want %s (sha256 of the content's JSON)", got, want)
			}
		})
	}
}
