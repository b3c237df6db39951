package policy

// Covers reports whether an approval rule that asks for at least one approval (minApprovals
// or teams) takes in the project on the cluster. A destructive change is carried out only
// where one does: "no approval rule applies" is not an approval.
func (p *Policy) Covers(project, cluster string) bool {
	if p == nil {
		return false
	}
	for _, r := range p.approvals {
		if (r.MinApprovals > 0 || len(r.Teams) > 0) && r.Scope.Matches(project, cluster) {
			return true
		}
	}
	return false
}
