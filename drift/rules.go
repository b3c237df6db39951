package drift

import (
	"regexp"
	"slices"
	"strings"
)

// Rule marks drifted fields as owned by design: shown in the report, not counted. Every
// criterion given must hold; criteria about the owner (Manager, Operation, Subresource) need
// every field manager that now owns the field to match them.
type Rule struct {
	// Kinds are object kinds ("Deployment"); empty means any.
	Kinds []string `json:"kinds,omitempty"`
	// Path is a field path (".spec.replicas"): it matches that field and every field below
	// it; * stands for any run of characters (".webhooks[*].clientConfig.caBundle").
	Path string `json:"path,omitempty"`
	// Manager is the owning field manager's name; * as in Path.
	Manager string `json:"manager,omitempty"`
	// Operation is Apply or Update; Subresource e.g. scale or status.
	Operation   string `json:"operation,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	// Why is shown next to the fields it matches.
	Why string `json:"why,omitempty"`
}

// DefaultRules are the fields controllers and admission own by design, not counted as drift
// unless a project turns them off (default_ignore: false in .kubeplan.yaml):
//
//   - whatever kube-controller-manager writes through the scale subresource: a
//     HorizontalPodAutoscaler setting replicas (KEDA scales through an HPA too);
//   - CA bundles of webhook configurations, CRD conversion webhooks and APIServices, which
//     injectors keep current (cert-manager's cainjector, istiod, OpenShift's service-ca).
//
// A mutating admission webhook's changes made during kubeplan's own apply are kubeplan's and
// are made again by every plan's dry-run, so they never show as drift.
func DefaultRules() []Rule {
	return []Rule{
		{Manager: "kube-controller-manager", Subresource: "scale",
			Why: "a HorizontalPodAutoscaler scales it (kube-controller-manager through the scale subresource)"},
		{Kinds: []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "CustomResourceDefinition", "APIService"}, Path: "*.caBundle",
			Why: "CA bundles are kept current by an injector"},
	}
}

// Settings are a project's drift settings.
type Settings struct {
	// Mode applies to objects without the kubeplan.dev/drift annotation; empty means Notify.
	Mode Mode
	// Ignore are the project's own rules, added to DefaultRules.
	Ignore []Rule
	// NoDefaults counts the fields DefaultRules match as drift too.
	NoDefaults bool
}

// matcher is a compiled rule.
type matcher struct {
	Rule
	path, manager *regexp.Regexp
}

func compile(s Settings) []matcher {
	var rules []Rule
	if !s.NoDefaults {
		rules = DefaultRules()
	}
	for _, r := range s.Ignore {
		if r.Why == "" {
			r.Why = "ignored by the project's drift settings"
		}
		rules = append(rules, r)
	}
	out := make([]matcher, len(rules))
	for i, r := range rules {
		out[i] = matcher{Rule: r}
		if r.Path != "" {
			// The path itself, or a field below it.
			out[i].path = regexp.MustCompile("^" + glob(r.Path) + `($|[.\[])`)
		}
		if r.Manager != "" {
			out[i].manager = regexp.MustCompile("^" + glob(r.Manager) + "$")
		}
	}
	return out
}

// glob turns a pattern whose only wildcard is * into a regular expression.
func glob(pattern string) string {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return strings.Join(parts, ".*")
}

// byDesign says why a drifted field of an object of the given kind is owned by design, or
// "" when no rule matches.
func byDesign(rules []matcher, kind string, f Field) string {
	for _, r := range rules {
		if r.matches(kind, f) {
			return r.Why
		}
	}
	return ""
}

func (r matcher) matches(kind string, f Field) bool {
	if len(r.Kinds) > 0 && !slices.Contains(r.Kinds, kind) {
		return false
	}
	if r.path != nil && !r.path.MatchString(f.Path) {
		return false
	}
	if r.manager == nil && r.Operation == "" && r.Subresource == "" {
		return true
	}
	if len(f.Owners) == 0 {
		return false
	}
	for _, o := range f.Owners {
		if r.manager != nil && !r.manager.MatchString(o.Manager) ||
			r.Operation != "" && r.Operation != o.Operation ||
			r.Subresource != "" && r.Subresource != o.Subresource {
			return false
		}
	}
	return true
}
