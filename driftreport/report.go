// Package driftreport is the drift of one project on one cluster as plain data: the objects
// that drifted, their fields and who changed them, a stable signature, and the text, Markdown
// and JSON writers. Package drift fills it from a plan; the forge issue (package comments) and
// the notifiers read it without depending on the planner or client-go.
package driftreport

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/plan"
)

// Annotation on an object in git sets its mode: ignore, notify or revert.
const Annotation = "kubeplan.dev/drift"

// Mode is what drift of an object leads to.
type Mode string

const (
	// Notify reports the drift (the default).
	Notify Mode = "notify"
	// Ignore does not report the object at all.
	Ignore Mode = "ignore"
	// Revert reports it and asks for git's state to be applied again; `kubeplan drift` only
	// reports, the revert is left to the caller that applies.
	Revert Mode = "revert"
)

// ParseMode reads a mode as the annotation or .kubeplan.yaml spells it.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Notify, Ignore, Revert:
		return m, nil
	}
	return "", fmt.Errorf("%q is not a drift mode (want notify, ignore or revert)", s)
}

// State is how an object drifted.
type State string

const (
	// Changed: the live object differs from git.
	Changed State = "changed"
	// Missing: git has the object and the cluster does not (deleted out of band, or never applied).
	Missing State = "missing"
	// Extra: the project's inventory lists an object git no longer has and the cluster still
	// does (not pruned yet, or pruning is off).
	Extra State = "extra"
)

// Cause is why one field differs from git.
type Cause string

const (
	// Taken: another field manager changed the field and now owns it (Owners say who).
	Taken Cause = "changed"
	// Removed: the field git sets is not in the live object and nobody owns it; managedFields
	// keep no record of who removed it.
	Removed Cause = "removed"
	// Git: kubeplan still owns the field live; git changed (or stopped setting it) since
	// kubeplan last applied it.
	Git Cause = "git"
	// Unknown: the field differs and no field manager owns it (set before managedFields, or
	// managedFields reset), or the difference could not be placed on a field.
	Unknown Cause = "unknown"
)

// Owner is one live managedFields entry: who wrote a field, how and when.
type Owner struct {
	Manager     string     `json:"manager"`
	Operation   string     `json:"operation"`
	Subresource string     `json:"subresource,omitempty"`
	Time        *time.Time `json:"time,omitempty"`
}

// String is `"kubectl" (Update, subresource scale) at 2026-07-01 12:04:05 UTC`.
func (o Owner) String() string {
	s := fmt.Sprintf("%q (%s", o.Manager, o.Operation)
	if o.Subresource != "" {
		s += ", subresource " + o.Subresource
	}
	s += ")"
	if o.Time != nil {
		s += " at " + o.Time.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return s
}

// Field is one field path git sets whose live value differs.
type Field struct {
	// Path is the field as structured-merge-diff prints it: .spec.replicas,
	// .spec.template.spec.containers[name="web"].image.
	Path  string `json:"path"`
	Cause Cause  `json:"cause"`
	// Owners are the field managers other than kubeplan that own the field now.
	Owners []Owner `json:"owners,omitempty"`
	// ByDesign, when set, says why the field does not count as drift (an ignore rule matched).
	ByDesign string `json:"byDesign,omitempty"`
}

// String is one line for people: ".spec.replicas changed by "kubectl" (Update) at …".
func (f Field) String() string {
	var s string
	switch f.Cause {
	case Taken:
		owners := make([]string, len(f.Owners))
		for i, o := range f.Owners {
			owners[i] = o.String()
		}
		s = f.Path + " changed by " + strings.Join(owners, " and ")
	case Removed:
		s = f.Path + " removed from the live object (managedFields do not record by whom)"
	case Git:
		s = f.Path + " changed in git since kubeplan last applied it"
	default:
		s = f.Path + " differs from git; no field manager owns it"
	}
	if f.ByDesign != "" {
		s += " — not counted: " + f.ByDesign
	}
	return s
}

// Object is one object that drifted, or whose only differences are owned by design.
type Object struct {
	Object plan.ObjectRef `json:"object"`
	State  State          `json:"state"`
	// Mode is the object's drift mode (never Ignore: those objects are not reported).
	Mode Mode `json:"mode"`
	// Source is the file in git the object comes from (empty for Extra objects).
	Source string `json:"source,omitempty"`
	// Fields are the drifted fields of a Changed object.
	Fields []Field `json:"fields,omitempty"`
	// Diff is the plan's diff, live → git, Secret values hidden.
	Diff string `json:"diff,omitempty"`
	// SecretKeys names the keys of a Secret that differ, never the values.
	SecretKeys []string `json:"secretKeys,omitempty"`
}

// Counted reports whether the object counts as drift: it is missing or extra, or one of its
// fields differs for a reason no ignore rule covers.
func (o Object) Counted() bool {
	if o.State != Changed {
		return true
	}
	for _, f := range o.Fields {
		if f.ByDesign == "" {
			return true
		}
	}
	return len(o.Fields) == 0
}

// Failure is an object the check could not compare (its dry-run failed).
type Failure struct {
	Object plan.ObjectRef `json:"object"`
	Source string         `json:"source,omitempty"`
	Reason string         `json:"reason"`
}

// Report is the drift of one project on one cluster.
type Report struct {
	Project string `json:"project"`
	Cluster string `json:"cluster"`
	// Commit is the commit git's side was read at, when the caller knows it (the scheduled
	// check of a default branch); `kubeplan drift DIR` leaves it empty.
	Commit string   `json:"commit,omitempty"`
	Notes  []string `json:"notes,omitempty"`
	// Objects are the drifted objects in apply order, and those whose every difference is
	// owned by design (not counted).
	Objects []Object `json:"objects"`
	// Ignored are the objects whose mode is ignore: checked by the plan, never reported.
	Ignored []plan.ObjectRef `json:"ignored,omitempty"`
	// Failed are objects whose state could not be compared.
	Failed []Failure `json:"failed,omitempty"`
	// Checked is how many objects git has for the project.
	Checked int `json:"checked"`
}

// Counts tallies the counted drift by state.
type Counts struct {
	Changed, Missing, Extra int
	// ByDesign are Changed objects whose every difference is owned by design.
	ByDesign int
}

// Total is the number of objects that count as drift.
func (c Counts) Total() int { return c.Changed + c.Missing + c.Extra }

// Counts tallies the report.
func (r *Report) Counts() Counts {
	var c Counts
	for _, o := range r.Objects {
		switch {
		case !o.Counted():
			c.ByDesign++
		case o.State == Changed:
			c.Changed++
		case o.State == Missing:
			c.Missing++
		case o.State == Extra:
			c.Extra++
		}
	}
	return c
}

// Drifted reports whether anything counts as drift.
func (r *Report) Drifted() bool { return r.Counts().Total() > 0 }

// Summary is "test / shop — drift: 1 changed, 1 missing, 0 extra" or "… — no drift".
func (r *Report) Summary() string {
	c := r.Counts()
	s := fmt.Sprintf("%s / %s — ", r.Cluster, r.Project)
	if c.Total() == 0 {
		s += "no drift"
	} else {
		s += fmt.Sprintf("drift: %d changed, %d missing, %d extra", c.Changed, c.Missing, c.Extra)
	}
	if len(r.Failed) > 0 {
		s += fmt.Sprintf(", %d not checked", len(r.Failed))
	}
	return s
}

// Signature identifies the drift itself: the project, the cluster, and for every object that
// counts, its state and the paths of its counted fields — not their values, owners or times.
// The same drift seen again has the same signature; a field drifting anew changes it, so a
// scheduled check notifies only on change. Empty when nothing counts.
func (r *Report) Signature() string {
	var lines []string
	for _, o := range r.Objects {
		if !o.Counted() {
			continue
		}
		var paths []string
		for _, f := range o.Fields {
			if f.ByDesign == "" {
				paths = append(paths, f.Path)
			}
		}
		sort.Strings(paths)
		// JSON keeps the parts apart whatever characters names and list keys hold.
		line, _ := json.Marshal(append([]string{o.Object.Group(), o.Object.Kind, o.Object.Namespace, o.Object.Name, string(o.State)}, paths...))
		lines = append(lines, string(line))
	}
	if len(lines) == 0 {
		return ""
	}
	sort.Strings(lines)
	head, _ := json.Marshal([]string{r.Project, r.Cluster})
	sum := sha256.Sum256([]byte(string(head) + "\n" + strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:])
}
