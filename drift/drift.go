// Package drift says where a cluster no longer matches git, how, and who changed it: it plans
// a project's objects as git has them against the live cluster (the same planner as a pull
// request's plan) and reads, for each drifted field, which field manager now owns it.
//
// The report is plain data (package driftreport) with a stable signature, so that a caller
// checking on a schedule can tell new drift from drift it has already reported. Reverting is
// not this package's job: it records each object's mode (kubeplan.dev/drift) for the caller
// that acts on it. The names below keep the report's types and writers reachable as drift.X
// for callers that plan and report in one place.
package drift

import (
	"io"

	"github.com/kubeplan/kubeplan/driftreport"
)

// Annotation on an object in git sets its mode: ignore, notify or revert.
const Annotation = driftreport.Annotation

type (
	Mode        = driftreport.Mode
	State       = driftreport.State
	Cause       = driftreport.Cause
	Owner       = driftreport.Owner
	Field       = driftreport.Field
	Object      = driftreport.Object
	Failure     = driftreport.Failure
	Report      = driftreport.Report
	Counts      = driftreport.Counts
	TextOptions = driftreport.TextOptions
)

const (
	Notify = driftreport.Notify
	Ignore = driftreport.Ignore
	Revert = driftreport.Revert

	Changed = driftreport.Changed
	Missing = driftreport.Missing
	Extra   = driftreport.Extra

	Taken   = driftreport.Taken
	Removed = driftreport.Removed
	Git     = driftreport.Git
	Unknown = driftreport.Unknown
)

// ParseMode reads a mode as the annotation or .kubeplan.yaml spells it.
func ParseMode(s string) (Mode, error) { return driftreport.ParseMode(s) }

// Text writes the report for a terminal (driftreport.Text).
func Text(w io.Writer, r *Report, o TextOptions) error { return driftreport.Text(w, r, o) }

// Markdown writes the report as Markdown (driftreport.Markdown).
func Markdown(w io.Writer, r *Report) error { return driftreport.Markdown(w, r) }

// JSON writes the report with its summary, counts and signature (driftreport.JSON).
func JSON(w io.Writer, r *Report) error { return driftreport.JSON(w, r) }
