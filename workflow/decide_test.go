package workflow

import (
	"slices"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/repoconfig"
	"github.com/kubeplan/kubeplan/store"
)

const (
	head    = "1111111aaaaaaa"
	oldHead = "0000000bbbbbbb"
	merge   = "2222222ccccccc"
)

// tgt is project@cluster; set changes the project's settings.
func tgt(name string, set ...func(*repoconfig.Project)) target {
	project, cluster, _ := strings.Cut(name, "@")
	t := target{project: repoconfig.Project{Name: project}, cluster: cluster}
	for _, s := range set {
		s(&t.project)
	}
	return t
}

func force(p *repoconfig.Project)    { p.Apply.Force = true }
func required(p *repoconfig.Project) { p.Apply.BeforeMerge = "required" }

// planOf is a plan for t whose changes are changes (one created ConfigMap when none).
func planOf(t target, changes ...plan.Change) *plan.Plan {
	if len(changes) == 0 {
		changes = []plan.Change{{Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: t.project.Name}, Action: plan.Create}}
	}
	return &plan.Plan{Project: t.project.Name, Cluster: t.cluster, Changes: changes}
}

var (
	failing = plan.Change{Object: plan.ObjectRef{APIVersion: "v1", Kind: "Service", Namespace: "default", Name: "bad"}, Action: plan.Fail, Reason: "invalid port"}
	denied  = plan.Change{Object: plan.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "default", Name: "root"}, Action: plan.Create,
		Findings: []plan.Finding{{Rule: "no-root", Severity: plan.Deny, Message: "runs as root"}}}
	warned = plan.Change{Object: plan.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "default", Name: "big"}, Action: plan.Create,
		Findings: []plan.Finding{{Rule: "limits", Severity: plan.Warn, Message: "no limits"}}}
	takeover = plan.Change{Object: plan.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"}, Action: plan.Update,
		Conflicts: true, Warnings: []string{".spec.replicas owned by hpa"}}
)

// reviewed is the stored plan record of p at sha.
func reviewed(p *plan.Plan, sha string) store.PlanRecord {
	return store.PlanRecord{Target: store.Target{Project: p.Project, Cluster: p.Cluster}, SHA: sha, Hash: p.Hash()}
}

// /apply applies only the plan reviewed at the head: a plan not made there, or one the live
// objects changed, is planned again; one that cannot be applied as it is, is refused. The
// order of the checks decides which a target gets.
func TestApplyFreshness(t *testing.T) {
	web, force := tgt("web@prod"), tgt("web@prod", force)
	clean := planOf(web)
	changed := planOf(web, plan.Change{Object: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "web"}, Action: plan.Update})
	cases := []struct {
		name            string
		now             []planned
		records         []store.PlanRecord
		stale, refusals []string
	}{
		{name: "the plan reviewed at the head", now: []planned{{target: web, plan: clean}}, records: []store.PlanRecord{reviewed(clean, head)}},
		{name: "warnings do not refuse", now: []planned{{target: web, plan: planOf(web, warned)}}, records: []store.PlanRecord{reviewed(planOf(web, warned), head)}},
		{name: "never planned", now: []planned{{target: web, plan: clean}},
			stale: []string{"`web` on `prod` was not planned at `1111111`"}},
		{name: "planned at an older head", now: []planned{{target: web, plan: clean}}, records: []store.PlanRecord{reviewed(clean, oldHead)},
			stale: []string{"`web` on `prod` was not planned at `1111111`"}},
		{name: "live objects changed", now: []planned{{target: web, plan: changed}}, records: []store.PlanRecord{reviewed(clean, head)},
			stale: []string{"`web` on `prod`: the live objects changed since the plan"}},
		{name: "cannot be planned now", now: []planned{{target: web, err: "cluster prod is unreachable"}}, records: []store.PlanRecord{reviewed(clean, head)},
			refusals: []string{"`web` on `prod` cannot be planned now: cluster prod is unreachable"}},
		{name: "cannot be planned comes before not reviewed", now: []planned{{target: web, err: "render web: bad chart"}},
			refusals: []string{"`web` on `prod` cannot be planned now: render web: bad chart"}},
		{name: "failing objects", now: []planned{{target: web, plan: planOf(web, failing)}}, records: []store.PlanRecord{reviewed(planOf(web, failing), head)},
			refusals: []string{"`web` on `prod`: 1 object(s) would fail to apply (see the plan)"}},
		{name: "stale comes before failing", now: []planned{{target: web, plan: planOf(web, failing)}}, records: []store.PlanRecord{reviewed(planOf(web, failing), oldHead)},
			stale: []string{"`web` on `prod` was not planned at `1111111`"}},
		{name: "denied by a rule", now: []planned{{target: web, plan: planOf(web, denied)}}, records: []store.PlanRecord{reviewed(planOf(web, denied), head)},
			refusals: []string{"`web` on `prod` is denied by policy: Pod default/root: rule \"no-root\": runs as root"}},
		{name: "field takeover without force", now: []planned{{target: web, plan: planOf(web, takeover)}}, records: []store.PlanRecord{reviewed(planOf(web, takeover), head)},
			refusals: []string{"`web` on `prod` would take over fields other field managers own (Deployment default/web .spec.replicas owned by hpa): set `apply.force: true` for project web in .kubeplan.yaml to take them over, or leave those fields out"}},
		{name: "field takeover with force", now: []planned{{target: force, plan: planOf(force, takeover)}}, records: []store.PlanRecord{reviewed(planOf(force, takeover), head)}},
		{name: "each target on its own, in order",
			now: []planned{
				{target: tgt("db@prod"), plan: planOf(tgt("db@prod"), failing)},
				{target: tgt("web@staging"), plan: planOf(tgt("web@staging"))},
				{target: web, plan: clean},
				{target: tgt("jobs@prod"), err: "no access"},
			},
			records: []store.PlanRecord{reviewed(planOf(tgt("db@prod"), failing), head), reviewed(clean, head)},
			stale:   []string{"`web` on `staging` was not planned at `1111111`"},
			refusals: []string{"`db` on `prod`: 1 object(s) would fail to apply (see the plan)",
				"`jobs` on `prod` cannot be planned now: no access"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stale, refusals := applyFreshness(tc.now, tc.records, head)
			if !slices.Equal(stale, tc.stale) {
				t.Errorf("stale:\n got %q\nwant %q", stale, tc.stale)
			}
			if !slices.Equal(refusals, tc.refusals) {
				t.Errorf("refusals:\n got %q\nwant %q", refusals, tc.refusals)
			}
		})
	}
}

// A merge queue's commit passes kubeplan/plan only when each target's plan is the one
// reviewed at the pull request's head; unlike /apply, a failing plan is named as failing even
// when it was never reviewed.
func TestGroupPlan(t *testing.T) {
	web, db := tgt("web@prod"), tgt("db@prod")
	cases := []struct {
		name     string
		plans    []planned
		records  []store.PlanRecord
		state    forge.State
		desc     string
		problems []string
	}{
		{name: "nothing affected", state: forge.Success, desc: "No project is affected by this change"},
		{name: "as reviewed", plans: []planned{{target: web, plan: planOf(web)}, {target: db, plan: planOf(db)}},
			records: []store.PlanRecord{reviewed(planOf(web), head), reviewed(planOf(db), head)},
			state:   forge.Success, desc: "Matches the plan reviewed on #7 (2 target(s))"},
		{name: "the queue carries other changes", plans: []planned{{target: web, plan: planOf(web, warned)}},
			records: []store.PlanRecord{reviewed(planOf(web), head)},
			state:   forge.Failure, desc: "Not the plan reviewed on #7: `web` on `prod`: the plan of the merge queue's commit differs from the one reviewed at `1111111` (the queue carries other changes to it, or the live objects changed): re-plan the pull request (`/plan`) and review it again",
			problems: []string{"`web` on `prod`: the plan of the merge queue's commit differs from the one reviewed at `1111111` (the queue carries other changes to it, or the live objects changed): re-plan the pull request (`/plan`) and review it again"}},
		{name: "reviewed at an older head only", plans: []planned{{target: web, plan: planOf(web)}},
			records: []store.PlanRecord{reviewed(planOf(web), oldHead)},
			state:   forge.Failure, desc: "Not the plan reviewed on #7: `web` on `prod` was not planned and reviewed at #7's head `1111111`",
			problems: []string{"`web` on `prod` was not planned and reviewed at #7's head `1111111`"}},
		{name: "failing comes before not reviewed, the first problem is the description",
			plans: []planned{{target: db, plan: planOf(db, failing)}, {target: web, err: "cluster prod is unreachable"}},
			state: forge.Failure, desc: "Not the plan reviewed on #7: `db` on `prod`: 1 object(s) would fail to apply",
			problems: []string{"`db` on `prod`: 1 object(s) would fail to apply", "`web` on `prod` cannot be planned at `2222222`: cluster prod is unreachable"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state, desc, problems := groupPlan(tc.plans, tc.records, 7, head, merge)
			if state != tc.state || desc != tc.desc {
				t.Errorf("status:\n got %s %q\nwant %s %q", state, desc, tc.state, tc.desc)
			}
			if !slices.Equal(problems, tc.problems) {
				t.Errorf("problems:\n got %q\nwant %q", problems, tc.problems)
			}
		})
	}
}

// applied is an apply record of target name ("project@cluster").
func applied(name, sha, trigger, state string) store.ApplyRecord {
	project, cluster, _ := strings.Cut(name, "@")
	return store.ApplyRecord{Target: store.Target{Project: project, Cluster: cluster}, SHA: sha, Trigger: trigger, State: state}
}

// kubeplan/apply on a head: only that head's latest apply before merge counts; a failure
// blocks, a project that requires an apply before merge waits for one.
func TestApplyStatus(t *testing.T) {
	web, webRequired, db := tgt("web@prod"), tgt("web@prod", required), tgt("db@prod")
	var many []target
	for i := range 20 {
		many = append(many, tgt(strings.Repeat("p", i+1)+"@prod", required))
	}
	cases := []struct {
		name    string
		history []store.ApplyRecord
		targets []target
		want    forge.Status
	}{
		{name: "nothing to apply before merge", targets: []target{web, db},
			want: forge.Status{State: forge.Success, Description: "No project needs applying before merge"}},
		{name: "required and not applied", targets: []target{webRequired, db},
			want: forge.Status{State: forge.Pending, Description: "Needs /apply before merge: web on prod"}},
		{name: "required, applied at an older head", targets: []target{webRequired},
			history: []store.ApplyRecord{applied("web@prod", oldHead, store.BeforeMerge, store.ApplySucceeded)},
			want:    forge.Status{State: forge.Pending, Description: "Needs /apply before merge: web on prod"}},
		{name: "required, still running", targets: []target{webRequired},
			history: []store.ApplyRecord{applied("web@prod", head, store.BeforeMerge, store.ApplyRunning)},
			want:    forge.Status{State: forge.Pending, Description: "Needs /apply before merge: web on prod"}},
		{name: "a roll-out is no apply before merge", targets: []target{webRequired},
			history: []store.ApplyRecord{applied("web@prod", head, store.OnMerge, store.ApplySucceeded)},
			want:    forge.Status{State: forge.Pending, Description: "Needs /apply before merge: web on prod"}},
		{name: "applied", targets: []target{webRequired, db},
			history: []store.ApplyRecord{applied("web@prod", head, store.BeforeMerge, store.ApplySucceeded)},
			want:    forge.Status{State: forge.Success, Description: "Applied: web on prod"}},
		{name: "a failure blocks before a missing apply", targets: []target{webRequired, db},
			history: []store.ApplyRecord{applied("db@prod", head, store.BeforeMerge, store.ApplyFailed)},
			want:    forge.Status{State: forge.Failure, Description: "Apply failed: db on prod"}},
		{name: "the latest apply counts", targets: []target{web, db},
			history: []store.ApplyRecord{
				applied("web@prod", head, store.BeforeMerge, store.ApplyFailed), applied("web@prod", head, store.BeforeMerge, store.ApplySucceeded),
				applied("db@prod", head, store.BeforeMerge, store.ApplySucceeded), applied("db@prod", head, store.BeforeMerge, store.ApplyFailed)},
			want: forge.Status{State: forge.Failure, Description: "Apply failed: db on prod"}},
		{name: "clipped to the forges' 140", targets: many,
			want: forge.Status{State: forge.Pending, Description: clip("Needs /apply before merge: "+describeNames(many), 140)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := progressOf(tc.history, head, tc.targets).status()
			tc.want.Context = StatusApply
			if got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
			if n := len([]rune(got.Description)); n > 140 {
				t.Errorf("description has %d characters", n)
			}
		})
	}
}

func describeNames(ts []target) string {
	var names []string
	for _, t := range ts {
		names = append(names, t.project.Name+" on "+t.cluster)
	}
	return strings.Join(names, ", ")
}

// A job run again for the same delivery finds what it applied; a job without a delivery
// never ran before.
func TestAppliedBefore(t *testing.T) {
	history := []store.ApplyRecord{{Delivery: "d1"}, {Delivery: ""}}
	for _, tc := range []struct {
		delivery string
		want     bool
	}{{"d1", true}, {"d2", false}, {"", false}} {
		if got := appliedBefore(history, tc.delivery); got != tc.want {
			t.Errorf("appliedBefore(%q) = %v, want %v", tc.delivery, got, tc.want)
		}
	}
}

// The roll-out plan: what an earlier run of the same merge's job finished is not applied
// again, what the policy refuses is refused, the rest rolls out, in configuration order.
func TestRolloutPlan(t *testing.T) {
	targets := []target{tgt("crds@prod"), tgt("web@prod"), tgt("web@staging"), tgt("db@prod")}
	by := func(r store.ApplyRecord, delivery string) store.ApplyRecord { r.Delivery = delivery; return r }
	refusals := map[store.Target][]string{
		{Project: "web", Cluster: "staging"}: {"@bob lacks the apply role"},
		{Project: "db", Cluster: "prod"}:     {"approvals missing"},
	}
	type want struct {
		done    bool
		refused []string
	}
	cases := []struct {
		name     string
		history  []store.ApplyRecord
		delivery string
		want     []want
	}{
		{name: "first run", delivery: "m1",
			want: []want{{}, {}, {refused: []string{"@bob lacks the apply role"}}, {refused: []string{"approvals missing"}}}},
		{name: "run again: finished targets are done, whatever their outcome", delivery: "m1",
			history: []store.ApplyRecord{
				by(applied("crds@prod", merge, store.OnMerge, store.ApplySucceeded), "m1"),
				by(applied("web@prod", merge, store.OnMerge, store.ApplyFailed), "m1"),
				by(applied("web@staging", merge, store.OnMerge, store.ApplyRefused), "m1"),
			},
			want: []want{{done: true}, {done: true}, {done: true}, {refused: []string{"approvals missing"}}}},
		{name: "a running or interrupted apply is not done", delivery: "m1",
			history: []store.ApplyRecord{
				by(applied("crds@prod", merge, store.OnMerge, store.ApplyRunning), "m1"),
				by(applied("web@prod", merge, store.OnMerge, store.ApplyInterrupted), "m1"),
			},
			want: []want{{}, {}, {refused: []string{"@bob lacks the apply role"}}, {refused: []string{"approvals missing"}}}},
		{name: "another delivery's applies are not this run's", delivery: "m2",
			history: []store.ApplyRecord{by(applied("crds@prod", merge, store.OnMerge, store.ApplySucceeded), "m1")},
			want:    []want{{}, {}, {refused: []string{"@bob lacks the apply role"}}, {refused: []string{"approvals missing"}}}},
		{name: "without a delivery nothing is done", delivery: "",
			history: []store.ApplyRecord{by(applied("crds@prod", merge, store.OnMerge, store.ApplySucceeded), "")},
			want:    []want{{}, {}, {refused: []string{"@bob lacks the apply role"}}, {refused: []string{"approvals missing"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps := rolloutPlan(targets, tc.history, tc.delivery, refusals)
			if len(steps) != len(targets) {
				t.Fatalf("%d steps for %d targets", len(steps), len(targets))
			}
			for i, s := range steps {
				if s.key() != targets[i].key() {
					t.Errorf("step %d is %v, want %v: the configuration order", i, s.target, targets[i])
				}
				if s.done != tc.want[i].done || !slices.Equal(s.refused, tc.want[i].refused) {
					t.Errorf("%v: done %v refused %q, want done %v refused %q", s.target, s.done, s.refused, tc.want[i].done, tc.want[i].refused)
				}
			}
		})
	}
}

// kubeplan/apply on the merge commit names every target the roll-out did not roll out: those
// this run refused or blocked first, then those whose latest roll-out at the merge commit did
// not succeed, each once.
func TestRolloutStatus(t *testing.T) {
	web, db, jobs := tgt("web@prod"), tgt("db@prod"), tgt("jobs@prod")
	cases := []struct {
		name    string
		targets []target
		results []string
		history []store.ApplyRecord
		failed  []string
		state   forge.State
		desc    string
	}{
		{name: "nothing rolls out on merge"},
		{name: "all rolled out", targets: []target{web, db}, results: []string{store.ApplySucceeded, store.ApplySucceeded},
			history: []store.ApplyRecord{applied("web@prod", merge, store.OnMerge, store.ApplySucceeded), applied("db@prod", merge, store.OnMerge, store.ApplySucceeded)},
			state:   forge.Success, desc: "Rolled out 2 project × cluster target(s)"},
		{name: "refused and blocked in this run, failed in the history",
			targets: []target{web, db, jobs}, results: []string{store.ApplyFailed, notApplied, store.ApplyRefused},
			history: []store.ApplyRecord{applied("web@prod", merge, store.OnMerge, store.ApplyFailed), applied("jobs@prod", merge, store.OnMerge, store.ApplyRefused)},
			failed:  []string{"db on prod", "jobs on prod (refused by policy)", "web on prod"},
			state:   forge.Failure, desc: "Roll-out incomplete: db on prod, jobs on prod (refused by policy), web on prod"},
		{name: "done by an earlier run: counted by its record", targets: []target{web, db}, results: []string{"", ""},
			history: []store.ApplyRecord{applied("web@prod", merge, store.OnMerge, store.ApplyRefused), applied("db@prod", merge, store.OnMerge, store.ApplySucceeded)},
			failed:  []string{"web on prod (refused by policy)"},
			state:   forge.Failure, desc: "Roll-out incomplete: web on prod (refused by policy)"},
		{name: "an interrupted apply counts by its rerun", targets: []target{web, db}, results: []string{store.ApplySucceeded, ""},
			history: []store.ApplyRecord{
				applied("web@prod", merge, store.OnMerge, store.ApplyInterrupted), applied("db@prod", merge, store.OnMerge, store.ApplyInterrupted),
				applied("web@prod", merge, store.OnMerge, store.ApplySucceeded)},
			failed: []string{"db on prod"},
			state:  forge.Failure, desc: "Roll-out incomplete: db on prod"},
		{name: "other commits and applies before merge do not count", targets: []target{web}, results: []string{store.ApplySucceeded},
			history: []store.ApplyRecord{
				applied("web@prod", merge, store.OnMerge, store.ApplySucceeded), applied("web@prod", head, store.OnMerge, store.ApplyFailed),
				applied("web@prod", merge, store.BeforeMerge, store.ApplyFailed)},
			state: forge.Success, desc: "Rolled out 1 project × cluster target(s)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			failed := rolloutFailures(tc.targets, tc.results, tc.history, merge)
			if !slices.Equal(failed, tc.failed) {
				t.Errorf("failed:\n got %q\nwant %q", failed, tc.failed)
			}
			state, desc, set := rolloutStatus(len(tc.targets), failed)
			if set != (len(tc.targets) > 0) || state != tc.state || desc != tc.desc {
				t.Errorf("status:\n got %v %s %q\nwant %s %q", set, state, desc, tc.state, tc.desc)
			}
		})
	}
}
