package workflow

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubeplan/kubeplan/forge"
)

// The commit statuses kubeplan sets; branch protection on them gates the merge.
const (
	StatusPlan   = "kubeplan/plan"
	StatusPolicy = "kubeplan/policy"
	StatusApply  = "kubeplan/apply"
)

// statuses sets kubeplan's commit statuses on one commit: every status kubeplan sets goes
// through here, with its description made fit for the forge.
type statuses struct {
	f    Forge
	repo string
	sha  string
}

func (s statuses) plan(ctx context.Context, state forge.State, desc string) error {
	return s.set(ctx, forge.Status{Context: StatusPlan, State: state, Description: desc})
}

func (s statuses) policy(ctx context.Context, state forge.State, desc string) error {
	return s.set(ctx, forge.Status{Context: StatusPolicy, State: state, Description: desc})
}

func (s statuses) apply(ctx context.Context, state forge.State, desc string) error {
	return s.set(ctx, forge.Status{Context: StatusApply, State: state, Description: desc})
}

// set sets a status, its description one line of at most the forges' limit.
func (s statuses) set(ctx context.Context, st forge.Status) error {
	st.Description = description(st.Description)
	return s.f.SetStatus(ctx, s.repo, s.sha, st)
}

// description is s as a status description: one line, clipped to forge.MaxStatusDescription.
func description(s string) string { return clip(s, forge.MaxStatusDescription) }

// clip shortens s to one line of at most n characters, ending in "…" when cut.
func clip(s string, n int) string {
	r := []rune(strings.ReplaceAll(s, "\n", " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}

// summarize turns the targets into the plan status and its one-line description.
func summarize(targets []planned) (forge.State, string) {
	var create, change, del, failing, destructive int
	var errs []string
	for _, t := range targets {
		if t.plan == nil {
			errs = append(errs, t.cluster+"/"+t.project.Name+": "+t.err)
			continue
		}
		c := t.plan.Counts()
		create, change, del, failing = create+c.Create, change+c.Update, del+c.Delete, failing+c.Fail
		destructive += len(t.plan.Destructive())
	}
	switch {
	case len(errs) > 0:
		return forge.Failure, errs[0]
	case failing > 0:
		return forge.Failure, fmt.Sprintf("%d object(s) would fail to apply", failing)
	}
	desc := fmt.Sprintf("%d to create, %d to change, %d to delete", create, change, del)
	if destructive > 0 {
		desc += fmt.Sprintf(" (%d destructive)", destructive)
	}
	return forge.Success, desc
}
