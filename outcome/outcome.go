// Package outcome is what applying a project to a cluster did, object by object: plain data
// written by the applier and read by comments, the workflow and (later) the history, so none of
// those readers compiles the Kubernetes clients or the renderers.
package outcome

import (
	"fmt"
	"strings"

	"github.com/kubeplan/kubeplan/plan"
)

// Action is what applying did to one object.
type Action string

const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Pruned     Action = "pruned"
	Failed     Action = "failed"
)

// Object is the outcome for one object.
type Object struct {
	Object plan.ObjectRef
	Action Action
	// Source is the file the object was rendered from (empty for pruned objects).
	Source string
	// Error says why the object failed, on one line.
	Error string
	// Health is the kstatus status after the wait: Current, InProgress, Failed, Terminating,
	// NotFound or Unknown; empty when not waited for (no wait, pruned or failed objects).
	Health        string
	HealthMessage string
}

// String is "Deployment shop/web: created", with the error or health when there is one.
func (o Object) String() string {
	s := o.Object.String() + ": " + string(o.Action)
	if o.Error != "" {
		s += ": " + o.Error
	}
	if o.Health != "" {
		s += " (" + o.Health
		if o.HealthMessage != "" {
			s += ": " + o.HealthMessage
		}
		s += ")"
	}
	return s
}

// Result is what applying one project to one cluster did.
type Result struct {
	Project, Cluster string
	// Objects are in the order they were applied (Namespaces and CRDs, other cluster-scoped
	// objects, namespaced objects; each by kind, namespace and name), pruned objects last.
	Objects []Object
	// Notes are things the user should know: skipped pruning, kinds no longer served…
	Notes []string
	// HealthTimedOut is set when the health wait ran out of time.
	HealthTimedOut bool
}

// Failed reports whether any object failed, is unhealthy (Failed), or the health wait timed out.
func (r *Result) Failed() bool {
	if r.HealthTimedOut {
		return true
	}
	for _, o := range r.Objects {
		if o.Action == Failed || o.Health == "Failed" {
			return true
		}
	}
	return false
}

// Counts summarises a result.
type Counts struct {
	Created, Configured, Unchanged, Pruned, Failed int
}

// String is "2 created, 1 configured, 3 unchanged, 1 pruned, 0 failed".
func (c Counts) String() string {
	var parts []string
	for _, n := range []struct {
		count int
		what  Action
	}{{c.Created, Created}, {c.Configured, Configured}, {c.Unchanged, Unchanged}, {c.Pruned, Pruned}, {c.Failed, Failed}} {
		if n.count > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n.count, n.what))
		}
	}
	if len(parts) == 0 {
		return "nothing to apply"
	}
	return strings.Join(parts, ", ")
}

// Counts tallies the result's actions.
func (r *Result) Counts() Counts {
	var c Counts
	for _, o := range r.Objects {
		switch o.Action {
		case Created:
			c.Created++
		case Configured:
			c.Configured++
		case Unchanged:
			c.Unchanged++
		case Pruned:
			c.Pruned++
		case Failed:
			c.Failed++
		}
	}
	return c
}
