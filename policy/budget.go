package policy

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Budget is what the manifest rules may spend on one plan, over all its objects and rules
// together: PlanCostBudget in CEL cost, and PlanEvalTime of time during which evaluations
// run. Each evaluation reserves the most it may cost (CostLimit) before it runs and gets back
// what it did not use, so a plan never spends more than its budget however many evaluations
// run at once. Time is counted while at least one evaluation runs, not per evaluation: the
// planner's workers evaluate side by side, and a sum over them would grow with the number of
// workers waiting for a CPU rather than with the work. Once an evaluation is refused, Err
// says so. A Budget is safe for concurrent use.
type Budget struct {
	mu        sync.Mutex
	cost      int64 // CEL cost left, reservations deducted
	limit     int64
	timeLimit time.Duration
	busy      time.Duration    // time during which evaluations ran, up to busySince
	busySince time.Time        // when the running evaluations began to overlap
	active    int              // evaluations running
	spent     map[string]int64 // cost per rule, to name the costliest
	skipped   int              // evaluations refused
	timeOut   bool             // the time ran out (else the cost)
}

// NewBudget returns the budget of one plan.
func NewBudget() *Budget { return newBudget(PlanCostBudget, PlanEvalTime) }

func newBudget(cost int64, t time.Duration) *Budget {
	return &Budget{cost: cost, limit: cost, timeLimit: t, spent: map[string]int64{}}
}

var errBudgetSpent = errors.New("not run: this plan's budget for manifest rules is spent")

// busyNow is the time evaluations have run, the running ones included. b.mu is held.
func (b *Budget) busyNow(now time.Time) time.Duration {
	if b.active > 0 {
		return b.busy + now.Sub(b.busySince)
	}
	return b.busy
}

// reserve takes the most one evaluation may cost; ok is false, and the evaluation is
// refused, when the budget cannot cover it. timeout is the evaluation's time limit: at most
// max, at most the time left.
func (b *Budget) reserve(max time.Duration) (timeout time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	left := b.timeLimit - b.busyNow(now)
	if b.cost < CostLimit+EvalOverheadCost || left <= 0 {
		b.skipped++
		b.timeOut = b.timeOut || left <= 0
		return 0, false
	}
	b.cost -= CostLimit + EvalOverheadCost
	if b.active == 0 {
		b.busySince = now
	}
	b.active++
	return min(max, left), true
}

// settle charges a reserved evaluation what it cost and returns the rest of its reservation.
func (b *Budget) settle(rule string, cost int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cost += CostLimit - cost
	b.spent[rule] += cost + EvalOverheadCost
	b.active--
	if b.active == 0 {
		b.busy += time.Since(b.busySince)
	}
}

// Err is nil while no evaluation has been refused; then it says what was spent, by which
// rule most, and how many evaluations did not run. A plan with this error is incomplete:
// callers fail it rather than show its findings.
func (b *Budget) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.skipped == 0 {
		return nil
	}
	top, most := "", int64(-1)
	for rule, c := range b.spent {
		if c > most || c == most && rule < top {
			top, most = rule, c
		}
	}
	why := fmt.Sprintf("its %s units of CEL cost", thousands(b.limit))
	if b.timeOut {
		why = fmt.Sprintf("its %s of evaluation time", b.timeLimit)
	}
	return fmt.Errorf("manifest rules spent this plan's budget (%s) and %d evaluations did not run; rule %q spent the most (%s units): make the rules cheaper or the project smaller",
		why, b.skipped, top, thousands(most))
}

// thousands writes n with thousands separators: 10,000,000.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
