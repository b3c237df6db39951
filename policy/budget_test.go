package policy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/plan"
)

// scanRule costs about 90,000 (nine scans of a 100 KB string at 0.1 per character), under the
// per-evaluation limit, yet runs in a fraction of a millisecond: a pull request can make
// every one of its objects cost that much.
func scanRule(name string) string {
	var scans []string
	for i := range 9 {
		scans = append(scans, fmt.Sprintf("!object.data.big.contains('needle-%d')", i))
	}
	return fmt.Sprintf("{name: %s, severity: warn, expr: %q}", name, strings.Join(scans, " && "))
}

func bigConfigMap() map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"big": strings.Repeat("x", 100_000)}}
}

// One plan's rules share one budget: a pull request with many objects, each cheap enough
// for the per-evaluation limit, cannot make the rules run without end. Evaluations run side
// by side, as the planner's workers make them; the plan never spends more than its budget.
func TestPlanBudgetBoundsAllEvaluationsOfAPlan(t *testing.T) {
	p := mustCompile(t, "rules: ["+scanRule("scan-a")+", "+scanRule("scan-b")+"]", "")
	b := NewBudget()
	obj := bigConfigMap()
	const objects = 200 // × 2 rules × ~90,000: 36,000,000, well over the budget
	var skipped, evaluated atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range objects / 32 {
				for _, f := range p.Check(context.Background(), b, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Create), obj, nil, PRInfo{}) {
					if !strings.Contains(f.Message, "budget for manifest rules is spent") {
						t.Errorf("finding %+v", f)
					}
					skipped.Add(1)
				}
				evaluated.Add(2)
			}
		}()
	}
	wg.Wait()
	ran := evaluated.Load() - skipped.Load()
	if spent := PlanCostBudget - b.cost; b.active != 0 || spent > PlanCostBudget || ran*90_000 > PlanCostBudget {
		t.Errorf("%d evaluations spent %d of a budget of %d", ran, spent, PlanCostBudget)
	}
	if ran < 100 {
		t.Errorf("only %d evaluations ran: the budget should cover about %d", ran, PlanCostBudget/90_000)
	}
	err := b.Err()
	if err == nil || skipped.Load() == 0 {
		t.Fatalf("budget error %v after %d refused evaluations", err, skipped.Load())
	}
	for _, want := range []string{"manifest rules spent this plan's budget (its 10,000,000 units of CEL cost)",
		fmt.Sprintf("and %d evaluations did not run", skipped.Load()), `rule "scan-`, "make the rules cheaper or the project smaller"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestPlanBudgetWithinReachHasNoError(t *testing.T) {
	p := mustCompile(t, manifestPolicy, "")
	b := NewBudget()
	for range 1000 {
		p.Check(context.Background(), b, Target{Project: "web", Cluster: "prod-eu"}, change("apps/v1", "Deployment", plan.Create), obj(t, deployment(false, 2)), nil, PRInfo{BaseRef: "main", Number: 1})
	}
	if err := b.Err(); err != nil {
		t.Fatalf("a thousand realistic objects: %v", err)
	}
}

// Should CEL's cost under-count an expression, the plan's evaluation time still runs out.
func TestPlanBudgetBoundsEvaluationTime(t *testing.T) {
	p := mustCompile(t, "rules: ["+scanRule("scan")+"]", "")
	b := newBudget(PlanCostBudget, time.Nanosecond)
	first := p.Check(context.Background(), b, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Create), bigConfigMap(), nil, PRInfo{})
	second := p.Check(context.Background(), b, Target{Project: "p", Cluster: "c"}, change("v1", "ConfigMap", plan.Create), bigConfigMap(), nil, PRInfo{})
	if len(first) > 1 || len(first) == 1 && !strings.Contains(first[0].Message, "deadline exceeded") {
		t.Errorf("first evaluation: %+v", first) // it may finish within its nanosecond, or not
	}
	if len(second) != 1 || !strings.Contains(second[0].Message, "budget for manifest rules is spent") {
		t.Errorf("second evaluation: %+v", second)
	}
	if err := b.Err(); err == nil || !strings.Contains(err.Error(), "its 1ns of evaluation time") {
		t.Errorf("error %v", err)
	}
}
