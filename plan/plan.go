// Package plan is the plan model: what applying a project's manifests would change on one
// cluster, object by object. A Plan is plain data: it hashes stably, marshals to JSON and is
// formatted for people by package report.
package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Action is what applying would do to one object.
type Action string

const (
	Create    Action = "create"
	Update    Action = "update"
	Delete    Action = "delete"
	Unchanged Action = "unchanged"
	// Fail means applying this object would fail; Reason says why.
	Fail Action = "fail"
)

// ObjectRef names an object on a cluster.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// String is "Kind namespace/name", or "Kind name" for cluster-scoped objects.
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Group is the API group of the object ("" for the core group).
func (r ObjectRef) Group() string {
	if i := strings.IndexByte(r.APIVersion, '/'); i >= 0 {
		return r.APIVersion[:i]
	}
	return ""
}

// Change is the planned change to one object.
type Change struct {
	Object ObjectRef `json:"object"`
	Action Action    `json:"action"`
	// Diff is a unified diff of normalized YAML, live → planned (Secret values hidden).
	Diff string `json:"diff,omitempty"`
	// Reason explains a failure, or qualifies an action ("CRD new in this plan, validated at apply").
	Reason string `json:"reason,omitempty"`
	// Warnings are things a reviewer must see: field takeovers, moves between projects…
	Warnings []string `json:"warnings,omitempty"`
	// SecretKeys names the keys of a Secret this change sets or removes, never the values.
	// Values are not compared with the live ones, so a key set to the value it has is listed.
	SecretKeys []string `json:"secretKeys,omitempty"`
	// Source is the file the object was rendered from (empty for deletions).
	Source string `json:"source,omitempty"`
	// Findings are the manifest policy rules this change breaks (package policy).
	Findings []Finding `json:"findings,omitempty"`
	// Conflicts is true when the change takes over fields another field manager owns: an
	// apply without force fails on it (Warnings say which fields and managers).
	Conflicts bool `json:"conflicts,omitempty"`
	// Destructive marks the deletion of a Namespace or a CustomResourceDefinition: it takes
	// down everything in the Namespace, or every custom resource of the CRD, inventory or not.
	Destructive bool `json:"destructive,omitempty"`
	// Cascade counts what a destructive deletion takes down with it, as the cluster had it
	// when planned (nil when it could not be counted at all).
	Cascade *Cascade `json:"cascade,omitempty"`
	// LiveSecretVersion is the live Secret's resourceVersion. Its values are hidden from Diff,
	// so a value someone changes after planning would not move the plan's hash; this does.
	LiveSecretVersion string `json:"-"`
}

// Cascade is what a destructive deletion takes down besides the object itself.
type Cascade struct {
	// Total is the number of objects counted.
	Total int `json:"total"`
	// Kinds are the counts by kind ("Deployment.apps"), largest first.
	Kinds []KindCount `json:"kinds,omitempty"`
	// AtLeast is true when Total is a lower bound: a list was capped or a kind could not be
	// listed (Uncounted names those).
	AtLeast   bool     `json:"atLeast,omitempty"`
	Uncounted []string `json:"uncounted,omitempty"`
}

// KindCount is how many objects of one kind a destructive deletion takes down.
type KindCount struct {
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

// String is "42 objects (30 Pod, 10 ConfigMap, 2 Deployment.apps)", "at least 1000 objects
// (…)", or "nothing" when the count is zero and complete.
func (c *Cascade) String() string {
	if c == nil {
		return "an uncounted number of objects"
	}
	if c.Total == 0 && !c.AtLeast {
		return "nothing else"
	}
	s := fmt.Sprintf("%d object", c.Total)
	if c.Total != 1 {
		s += "s"
	}
	if c.AtLeast {
		s = "at least " + s
	}
	var kinds []string
	for i, k := range c.Kinds {
		if i == 8 {
			kinds = append(kinds, fmt.Sprintf("%d more kinds", len(c.Kinds)-8))
			break
		}
		kinds = append(kinds, fmt.Sprintf("%d %s", k.Count, k.Kind))
	}
	if len(kinds) > 0 {
		s += " (" + strings.Join(kinds, ", ") + ")"
	}
	if len(c.Uncounted) > 0 {
		s += "; not counted: " + strings.Join(c.Uncounted, ", ")
	}
	return s
}

// Destroys reports whether deleting the object takes more down with it: a Namespace deletes
// everything in it, a CustomResourceDefinition every custom resource of its kind.
func Destroys(r ObjectRef) bool {
	switch ApplyPhase(r) {
	case 0, 1:
		return true
	}
	return false
}

// Severity says what a broken manifest rule does.
type Severity string

const (
	// Deny fails the kubeplan/policy status: the change cannot be applied or merged.
	Deny Severity = "deny"
	// Warn shows in the plan comment only.
	Warn Severity = "warn"
)

// Finding is one manifest rule a change breaks.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// Plan is the plan for one project on one cluster.
type Plan struct {
	Project        string   `json:"project"`
	Cluster        string   `json:"cluster"`
	ClusterVersion string   `json:"clusterVersion,omitempty"`
	Renderer       string   `json:"renderer,omitempty"`
	Notes          []string `json:"notes,omitempty"`
	Changes        []Change `json:"changes"`
}

// Counts summarises a plan.
type Counts struct {
	Create, Update, Delete, Unchanged, Fail int
}

// Counts tallies the plan's actions.
func (p *Plan) Counts() Counts {
	var c Counts
	for _, ch := range p.Changes {
		switch ch.Action {
		case Create:
			c.Create++
		case Update:
			c.Update++
		case Delete:
			c.Delete++
		case Unchanged:
			c.Unchanged++
		case Fail:
			c.Fail++
		}
	}
	return c
}

// Destructive lists the plan's destructive deletions (see Change.Destructive).
func (p *Plan) Destructive() []Change {
	var out []Change
	for _, ch := range p.Changes {
		if ch.Destructive {
			out = append(out, ch)
		}
	}
	return out
}

// HasChanges reports whether applying would change anything.
func (c Counts) HasChanges() bool { return c.Create+c.Update+c.Delete > 0 }

// String is the summary line: "2 to create, 3 to change, 1 to delete".
func (c Counts) String() string {
	s := fmt.Sprintf("%d to create, %d to change, %d to delete", c.Create, c.Update, c.Delete)
	if c.Fail > 0 {
		s += fmt.Sprintf(", %d failing", c.Fail)
	}
	return s
}

// Summary is "<cluster> / <project> — 2 to create, 3 to change, 1 to delete".
func (p *Plan) Summary() string {
	return fmt.Sprintf("%s / %s — %s", p.Cluster, p.Project, p.Counts())
}

// Sort orders changes the way they would be applied (see ApplyOrder).
func (p *Plan) Sort() {
	sort.SliceStable(p.Changes, func(i, j int) bool { return ApplyOrder(p.Changes[i].Object, p.Changes[j].Object) })
}

// ApplyOrder reports whether a is applied before b: Namespaces and CRDs first, then other
// cluster-scoped objects, then namespaced ones, each by kind, namespace and name.
func ApplyOrder(a, b ObjectRef) bool {
	if ra, rb := ApplyPhase(a), ApplyPhase(b); ra != rb {
		return ra < rb
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.APIVersion < b.APIVersion
}

// ApplyPhase ranks an object for applying: 0 Namespaces, 1 CRDs, 2 other cluster-scoped
// objects, 3 namespaced objects.
func ApplyPhase(r ObjectRef) int {
	switch {
	case r.Kind == "Namespace" && r.Group() == "":
		return 0
	case r.Kind == "CustomResourceDefinition" && r.Group() == "apiextensions.k8s.io":
		return 1
	case r.Namespace == "":
		return 2
	default:
		return 3
	}
}

// Hash identifies the plan's content: the same inputs against the same live state give the
// same hash, so an apply can check that it applies what was reviewed. Notes and the cluster
// version are not part of it; the versions of live Secrets are, as their values are not. Nor
// are the counts of what a destructive deletion takes down: pods and events come and go in a
// live namespace, and what was reviewed is the decision to delete it.
func (p *Plan) Hash() string {
	var secretVersions []string
	changes := make([]Change, len(p.Changes))
	for i, ch := range p.Changes {
		if ch.LiveSecretVersion != "" {
			secretVersions = append(secretVersions, ch.Object.String()+"@"+ch.LiveSecretVersion)
		}
		ch.Cascade = nil
		changes[i] = ch
	}
	// In apply order, whatever order the producer left them in: the hash is of the content.
	// The planner sorts the same way, so a sorted plan hashes as it always has.
	sort.SliceStable(changes, func(i, j int) bool { return ApplyOrder(changes[i].Object, changes[j].Object) })
	sort.Strings(secretVersions)
	// The hash is of json.Marshal(hashContent{...}), written to the hash a change at a time:
	// the JSON of a plan of thousands of objects, made whole, was the plan's peak of memory.
	// The bytes are the same (TestHashIsOfTheContentsJSON), so stored hashes stay valid.
	h := sha256.New()
	write := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			// Only strings and slices of strings: marshalling cannot fail.
			panic(fmt.Sprintf("plan hash: %v", err))
		}
		h.Write(b)
	}
	io.WriteString(h, `{"Project":`)
	write(p.Project)
	io.WriteString(h, `,"Cluster":`)
	write(p.Cluster)
	io.WriteString(h, `,"Changes":[`)
	for i := range changes {
		if i > 0 {
			io.WriteString(h, ",")
		}
		write(&changes[i])
	}
	io.WriteString(h, "]")
	if len(secretVersions) > 0 {
		io.WriteString(h, `,"SecretVersions":`)
		write(secretVersions)
	}
	io.WriteString(h, "}")
	return hex.EncodeToString(h.Sum(nil))
}

// hashContent is what Hash hashes the JSON of.
type hashContent struct {
	Project, Cluster string
	Changes          []Change
	SecretVersions   []string `json:",omitempty"`
}

// Denials lists what deny rules stop in this plan, one line per finding, object first.
func (p *Plan) Denials() []string {
	var out []string
	for _, ch := range p.Changes {
		for _, f := range ch.Findings {
			if f.Severity != Warn {
				out = append(out, fmt.Sprintf("%s: rule %q: %s", ch.Object, f.Rule, f.Message))
			}
		}
	}
	return out
}
