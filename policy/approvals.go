package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hmarr/codeowners"

	"github.com/kubeplan/kubeplan/forge"
)

// PullRequest is what approval rules look at.
type PullRequest struct {
	Author  string
	HeadSHA string
	// ChangedFiles are repository paths, for code owners.
	ChangedFiles []string
	// Reviews are listed oldest first.
	Reviews []forge.Review
}

// ApprovalStatus says whether a pull request has the approvals it needs.
type ApprovalStatus struct {
	Satisfied bool
	// Summary is one line for the commit status, of at most forge.MaxStatusDescription characters.
	Summary string
	// Details has one line per rule for the pull request comment.
	Details []string
	// Counted are the approvals that counted toward at least one rule, in order of first
	// review (the history records them as they stood).
	Counted []Approval
}

// Approval is a reviewer's approval and the commit it was given on.
type Approval struct {
	Reviewer string
	SHA      string
}

// approver is a reviewer whose current stance is an approval.
type approver struct {
	login string
	sha   string
}

// Approvals evaluates every approval rule whose scope matches one of the targets, under any
// of their names (see Target); all of them must be satisfied. A reviewer's current stance is their latest approving,
// change-requesting or dismissed review (plain comments change nothing); the author's own
// approval never counts; an approval given on another commit than HeadSHA (or on an unknown
// one) counts only for rules with CountStaleApprovals. Each rule is evaluated once however
// many targets it matches. No rule in scope means Satisfied.
func (p *Policy) Approvals(ctx context.Context, dir Directory, pr PullRequest, owners CodeOwners, targets []Target) (ApprovalStatus, error) {
	var rules []*approvalRule
	if p != nil {
		for i := range p.approvals {
			r := &p.approvals[i]
			if slices.ContainsFunc(targets, func(t Target) bool { return t.matchedBy(r.Scope) }) {
				rules = append(rules, r)
			}
		}
	}
	if len(rules) == 0 {
		return ApprovalStatus{Satisfied: true, Summary: "No approval rule applies"}, nil
	}

	// Current stances, in order of first review.
	author := strings.TrimPrefix(pr.Author, "@")
	var order []string
	stance := map[string]forge.Review{}
	for _, rv := range pr.Reviews {
		if !rv.Approved && !rv.ChangesRequested && !rv.Dismissed {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(rv.Author, "@"))
		if key == "" {
			continue
		}
		if _, seen := stance[key]; !seen {
			order = append(order, key)
		}
		stance[key] = rv
	}
	var approvers []approver
	selfApproved := false
	for _, key := range order {
		rv := stance[key]
		if !rv.Approved || rv.Dismissed || rv.ChangesRequested {
			continue
		}
		login := strings.TrimPrefix(rv.Author, "@")
		if strings.EqualFold(login, author) {
			selfApproved = true
			continue
		}
		approvers = append(approvers, approver{login: login, sha: rv.CommitSHA})
	}

	members := map[string]*membership{}
	isMember := func(ctx context.Context, user, team string) (bool, error) {
		m := members[strings.ToLower(user)]
		if m == nil {
			m = newMembership(dir, user)
			members[strings.ToLower(user)] = m
		}
		return m.member(ctx, team)
	}

	st := ApprovalStatus{Satisfied: true}
	var worst *ruleResult
	var needs []string
	counted := map[string]bool{}
	for _, r := range rules {
		res, err := r.evaluate(ctx, isMember, pr, approvers, owners)
		if err != nil {
			return ApprovalStatus{}, err
		}
		for _, login := range res.approvers {
			counted[strings.ToLower(login)] = true
		}
		if selfApproved && !res.ok() {
			res.notes = append(res.notes, fmt.Sprintf("@%s's own approval does not count", author))
		}
		st.Details = append(st.Details, res.detail())
		if !res.ok() {
			st.Satisfied = false
		}
		for _, n := range res.needs() {
			if !slices.Contains(needs, n) {
				needs = append(needs, n)
			}
		}
		if worst == nil || res.worseThan(worst) {
			worst = res
		}
	}
	for _, a := range approvers {
		if counted[strings.ToLower(a.login)] {
			st.Counted = append(st.Counted, Approval{Reviewer: a.login, SHA: a.sha})
		}
	}
	st.Summary = summarize(st.Satisfied, worst, needs)
	return st, nil
}

type ruleResult struct {
	rule    *approvalRule
	counted int
	// approvers are the logins whose approvals counted.
	approvers []string
	// missingTeams have no approval from a member.
	missingTeams []string
	// missingOwners maps an owner set ("@alice or @org/web") to the files still needing it.
	missingOwners map[string][]string
	ownerOrder    []string
	// notes explain what is missing; info is shown even when the rule is satisfied.
	notes []string
	info  []string
}

// countString is "1 of 2 approvals"; extra approvals show as "2 of 2".
func (r *ruleResult) countString() string {
	return fmt.Sprintf("%d of %d approvals", min(r.counted, r.rule.MinApprovals), r.rule.MinApprovals)
}

func (r *ruleResult) deficit() int { return max(r.rule.MinApprovals-r.counted, 0) }

func (r *ruleResult) ok() bool {
	return r.deficit() == 0 && len(r.missingTeams) == 0 && len(r.missingOwners) == 0
}

func (r *ruleResult) worseThan(o *ruleResult) bool {
	if r.deficit() != o.deficit() {
		return r.deficit() > o.deficit()
	}
	return r.rule.MinApprovals > o.rule.MinApprovals
}

func (r *ruleResult) needs() []string {
	var out []string
	for _, t := range r.missingTeams {
		out = append(out, "@"+t)
	}
	if n := 0; len(r.missingOwners) > 0 {
		for _, files := range r.missingOwners {
			n += len(files)
		}
		if len(r.ownerOrder) == 1 {
			// One set of owners is short enough to name in a commit status.
			out = append(out, fmt.Sprintf("a code owner (%s) for %s", r.ownerOrder[0], plural(n, "file")))
		} else {
			out = append(out, fmt.Sprintf("code owners of %s", plural(n, "file")))
		}
	}
	return out
}

// detail is `approval rule "prod" (all projects on prod-*): 1 of 2 approvals; needs …`.
func (r *ruleResult) detail() string {
	var b strings.Builder
	fmt.Fprintf(&b, "approval rule %q (%s", r.rule.Name, r.rule.Scope)
	if r.rule.source == RepoFile {
		b.WriteString(", from " + RepoFile)
	}
	b.WriteString("): ")
	if r.ok() {
		b.WriteString("satisfied")
		if r.rule.MinApprovals > 0 {
			b.WriteString(", " + r.countString())
		}
		for _, i := range r.info {
			b.WriteString("; " + i)
		}
		return b.String()
	}
	var parts []string
	if r.rule.MinApprovals > 0 {
		parts = append(parts, r.countString())
	}
	if len(r.missingTeams) > 0 {
		var ts []string
		for _, t := range r.missingTeams {
			ts = append(ts, "@"+t)
		}
		parts = append(parts, "needs an approval from "+joinAnd(ts))
	}
	for _, owners := range r.ownerOrder {
		files := r.missingOwners[owners]
		shown := files
		more := ""
		if len(files) > 5 {
			shown, more = files[:5], fmt.Sprintf(" and %d more", len(files)-5)
		}
		parts = append(parts, fmt.Sprintf("needs a code owner's approval (%s) for %s%s", owners, strings.Join(shown, ", "), more))
	}
	parts = append(parts, r.notes...)
	parts = append(parts, r.info...)
	b.WriteString(strings.Join(parts, "; "))
	return b.String()
}

func (r *approvalRule) evaluate(ctx context.Context, isMember func(context.Context, string, string) (bool, error), pr PullRequest, approvers []approver, owners CodeOwners) (*ruleResult, error) {
	res := &ruleResult{rule: r, missingOwners: map[string][]string{}}
	var counted []string
	for _, a := range approvers {
		switch {
		case pr.HeadSHA != "" && a.sha == pr.HeadSHA, r.CountStaleApprovals:
			counted = append(counted, a.login)
		case a.sha == "":
			res.notes = append(res.notes, fmt.Sprintf("approval by @%s is on an unknown commit, so it does not count", a.login))
		default:
			res.notes = append(res.notes, fmt.Sprintf("approval by @%s is on an older commit", a.login))
		}
	}
	res.counted, res.approvers = len(counted), counted

	approvedBy := func(team string) (bool, error) {
		for _, login := range counted {
			ok, err := isMember(ctx, login, team)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
	for _, t := range r.Teams {
		ok, err := approvedBy(t)
		if err != nil {
			return nil, err
		}
		if !ok {
			res.missingTeams = append(res.missingTeams, t)
		}
	}

	if !r.CodeOwners {
		return res, nil
	}
	if owners.IsZero() {
		res.info = append(res.info, "no CODEOWNERS file, so no file has code owners")
		return res, nil
	}
	unmatchable := map[string]bool{}
	for _, file := range pr.ChangedFiles {
		reqs, err := owners.requirements(file)
		if err != nil {
			return nil, err
		}
		for _, req := range reqs {
			ok := false
			var names []string
			for _, o := range req.owners {
				names = append(names, ownerString(o))
				if ok {
					continue
				}
				switch o.Type {
				case codeowners.UsernameOwner:
					ok = slices.ContainsFunc(counted, func(l string) bool { return strings.EqualFold(l, o.Value) })
				case codeowners.TeamOwner:
					if ok, err = approvedBy(o.Value); err != nil {
						return nil, err
					}
				default: // email addresses and GitLab roles: no login to compare
					unmatchable[ownerString(o)] = true
				}
			}
			if ok {
				continue
			}
			key := strings.Join(names, " or ")
			if req.section != "" {
				key = "[" + req.section + "] " + key
			}
			if _, seen := res.missingOwners[key]; !seen {
				res.ownerOrder = append(res.ownerOrder, key)
			}
			res.missingOwners[key] = append(res.missingOwners[key], file)
		}
	}
	if len(res.missingOwners) > 0 && len(unmatchable) > 0 {
		var list []string
		for o := range unmatchable {
			list = append(list, o)
		}
		slices.Sort(list)
		res.notes = append(res.notes, fmt.Sprintf("code owners %s cannot be matched to forge logins: name them by @login or @team in %s", strings.Join(list, ", "), owners.File()))
	}
	return res, nil
}

func summarize(satisfied bool, worst *ruleResult, needs []string) string {
	var s string
	switch {
	case worst.rule.MinApprovals > 0:
		s = worst.countString()
	case satisfied:
		s = "Approval rules satisfied"
	default:
		s = plural(worst.counted, "approval")
	}
	if !satisfied && len(needs) > 0 {
		s += ", needs " + strings.Join(needs, ", ")
	}
	return truncate(s, forge.MaxStatusDescription)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func joinAnd(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	default:
		return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
	}
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
