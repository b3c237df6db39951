package policy

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/objdiff"
	"github.com/kubeplan/kubeplan/plan"
)

// Limits on manifest rules: repositories may add rules, so a rule must not be able to stall
// or exhaust the server.
const (
	// CostLimit is the CEL runtime cost one evaluation may spend. Realistic rules (loops over
	// containers, ports, labels) cost a few thousand; with cel-go's cost tracking one unit takes
	// roughly a microsecond, so this keeps a hostile rule to about a tenth of a second.
	CostLimit = 100_000
	// EvalTimeout bounds one evaluation in wall-clock time as well: the cost tracker slows
	// down on long comprehensions faster than their cost grows.
	EvalTimeout = time.Second
	// MaxExprLength is the longest expression accepted, in code points.
	MaxExprLength = 10_000
	// interruptEvery is how many comprehension iterations pass between context checks.
	interruptEvery = 100

	// PlanCostBudget is the CEL cost all rule evaluations of one plan may spend together
	// (every object × every rule in scope): about ten seconds of CPU, so a pull request of
	// 50,000 objects under expensive rules cannot keep the server busy for minutes. Realistic
	// rules cost tens of units per object; a plan of 50,000 objects under five of them spends
	// a fraction of it.
	PlanCostBudget = 10_000_000
	// EvalOverheadCost is charged for every evaluation on top of its CEL cost: an evaluation
	// takes some microseconds whatever its expression (activation, cost tracking), which CEL's
	// cost does not count.
	EvalOverheadCost = 10
	// PlanEvalTime bounds the time during which one plan's evaluations run, should CEL's
	// cost under-count some expression (see EvalTimeout and Budget).
	PlanEvalTime = 30 * time.Second
)

// evalTimeout is EvalTimeout; tests lengthen it to see the cost limit act on its own.
var evalTimeout = EvalTimeout

// PRInfo is the pull request as manifest rules see it (the `pr` variable).
type PRInfo struct {
	Repo    string
	Number  int
	Author  string
	BaseRef string
	HeadRef string
}

type manifestRule struct {
	ManifestRule
	source  string
	kinds   []kindMatcher
	actions []plan.Action
	prg     cel.Program
}

type kindMatcher struct {
	group    string
	anyGroup bool
	kind     string
}

var (
	envOnce sync.Once
	celEnv  *cel.Env
	envErr  error
)

// environment is the CEL environment manifest rules compile in.
func environment() (*cel.Env, error) {
	envOnce.Do(func() {
		celEnv, envErr = cel.NewEnv(
			cel.Variable("object", cel.DynType),
			cel.Variable("oldObject", cel.DynType),
			cel.Variable("action", cel.StringType),
			cel.Variable("project", cel.StringType),
			cel.Variable("cluster", cel.StringType),
			cel.Variable("pr", cel.MapType(cel.StringType, cel.DynType)),
			cel.OptionalTypes(),
			cel.CrossTypeNumericComparisons(true),
			ext.Strings(),
			ext.Sets(),
			ext.Lists(ext.ListsMaxRangeSize(10_000)),
			ext.TwoVarComprehensions(),
			ext.Math(),
			cel.ParserExpressionSizeLimit(MaxExprLength),
		)
	})
	return celEnv, envErr
}

var (
	kindPattern  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
	groupPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)
)

// ruleActions are the actions a rule may name; DefaultActions apply when it names none.
var (
	ruleActions    = []plan.Action{plan.Create, plan.Update, plan.Delete, plan.Unchanged}
	DefaultActions = []plan.Action{plan.Create, plan.Update, plan.Delete}
)

func compileRule(r ManifestRule, source string) (*manifestRule, error) {
	mr := &manifestRule{ManifestRule: r, source: source}
	if err := r.Scope.validate(); err != nil {
		return nil, err
	}
	switch r.Severity {
	case "":
		mr.Severity = plan.Deny
	case plan.Deny, plan.Warn:
	default:
		return nil, fmt.Errorf("severity %q (want deny or warn)", r.Severity)
	}
	for _, k := range r.Kinds {
		var m kindMatcher
		if i := strings.IndexByte(k, '/'); i >= 0 {
			m.group, m.kind = k[:i], k[i+1:]
			if m.group == "core" {
				m.group = ""
			} else if !groupPattern.MatchString(m.group) {
				return nil, fmt.Errorf("kinds: %q: %q is not an API group (write Kind, group/Kind or core/Kind)", k, m.group)
			}
		} else {
			m.anyGroup, m.kind = true, k
		}
		if !kindPattern.MatchString(m.kind) {
			return nil, fmt.Errorf("kinds: %q is not a kind (write Kind, group/Kind or core/Kind)", k)
		}
		mr.kinds = append(mr.kinds, m)
	}
	for _, a := range r.Actions {
		act := plan.Action(strings.ToLower(a))
		if !slices.Contains(ruleActions, act) {
			return nil, fmt.Errorf("actions: %q (want create, update, delete or unchanged)", a)
		}
		mr.actions = append(mr.actions, act)
	}
	if len(mr.actions) == 0 {
		mr.actions = DefaultActions
	}
	if strings.TrimSpace(r.Expr) == "" {
		return nil, fmt.Errorf("expr is empty")
	}
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, iss := env.Compile(r.Expr)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("%s", celIssues(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, fmt.Errorf("expr must return a bool, not %s (compare values, e.g. object.spec.replicas > 1 or object.?spec.?paused == optional.of(true))", ast.OutputType())
	}
	mr.prg, err = env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(interruptEvery),
	)
	if err != nil {
		return nil, fmt.Errorf("%s", celIssues(err.Error()))
	}
	return mr, nil
}

// celIssues keeps the "ERROR: <input>:1:5: …" lines of a CEL error, without the source
// excerpt and the empty "(in container …)" noise, on one line.
func celIssues(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(strings.ReplaceAll(l, " (in container '')", ""))
		if l == "" || strings.HasPrefix(l, "|") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "; ")
}

func (r *manifestRule) appliesTo(t Target, ch plan.Change) bool {
	if !slices.Contains(r.actions, ch.Action) || !t.matchedBy(r.Scope) {
		return false
	}
	if len(r.kinds) == 0 {
		return true
	}
	return slices.ContainsFunc(r.kinds, func(k kindMatcher) bool {
		return strings.EqualFold(k.kind, ch.Object.Kind) && (k.anyGroup || k.group == ch.Object.Group())
	})
}

// Check evaluates the manifest rules in scope of the target (under any of its names, see
// Target) on one planned change (planned is nil for a deletion, live nil for a creation) and
// returns the rules it breaks, spending from b, the plan's budget (nil: a budget for this call
// alone). A rule that cannot be evaluated (missing field, cost limit, timeout, budget spent) is
// a finding too: deny rules fail closed.
func (p *Policy) Check(ctx context.Context, b *Budget, t Target, ch plan.Change, planned, live map[string]any, pr PRInfo) []plan.Finding {
	if p == nil {
		return nil
	}
	if b == nil {
		b = NewBudget()
	}
	var vars map[string]any
	var out []plan.Finding
	for _, r := range p.rules {
		if !r.appliesTo(t, ch) {
			continue
		}
		if vars == nil {
			vars = map[string]any{
				"object":    objectValue(planned),
				"oldObject": objectValue(live),
				"action":    string(ch.Action),
				"project":   t.Project,
				"cluster":   t.Cluster,
				"pr": map[string]any{
					"repo":    pr.Repo,
					"number":  int64(pr.Number),
					"author":  pr.Author,
					"baseRef": pr.BaseRef,
					"headRef": pr.HeadRef,
				},
			}
		}
		pass, err := r.eval(ctx, b, vars)
		switch {
		case err != nil:
			out = append(out, plan.Finding{Rule: r.Name, Severity: r.Severity, Message: "rule could not be evaluated: " + err.Error()})
		case !pass:
			msg := r.Message
			if msg == "" {
				msg = "breaks rule: " + r.Expr
			}
			out = append(out, plan.Finding{Rule: r.Name, Severity: r.Severity, Message: msg})
		}
	}
	return out
}

func (r *manifestRule) eval(ctx context.Context, b *Budget, vars map[string]any) (bool, error) {
	timeout, ok := b.reserve(evalTimeout)
	if !ok {
		return false, errBudgetSpent
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	val, details, err := r.prg.ContextEval(ctx, vars)
	cost := uint64(CostLimit)
	if details != nil && details.ActualCost() != nil {
		cost = min(*details.ActualCost(), CostLimit)
	}
	b.settle(r.Name, int64(cost))
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("%v (%w)", err, ctx.Err())
		}
		return false, err
	}
	pass, ok := val.Value().(bool)
	if !ok {
		return false, fmt.Errorf("expression returned %s, not a bool", val.Type())
	}
	return pass, nil
}

// objectValue is an object as rules see it: null when absent, and a Secret with its values
// hidden, so that no rule (a repository's included) can carry them into a message or a log.
func objectValue(m map[string]any) any {
	if m == nil {
		return types.NullValue
	}
	return objdiff.Masked(&unstructured.Unstructured{Object: m}).Object
}

// Content is the map Check takes for an object; nil for none.
func Content(u *unstructured.Unstructured) map[string]any {
	if u == nil {
		return nil
	}
	return u.Object
}
