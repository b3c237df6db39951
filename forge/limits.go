package forge

// The forges' limits, written once: the forge clients, the workflow, the policy and the test
// emulator all refer to these.
const (
	// MaxStatusDescription is the longest commit status description GitHub accepts, in
	// characters; kubeplan keeps to it on every forge, so a status reads the same everywhere.
	MaxStatusDescription = 140
	// MaxGitHubComment is the largest comment body GitHub accepts, in characters.
	MaxGitHubComment = 65536
	// MaxGitLabNote is the largest note body GitLab accepts, in characters.
	MaxGitLabNote = 1_000_000
	// MaxGitLabIssueDescription is the largest issue description GitLab accepts, in characters
	// (GitHub's issue bodies share its comments' limit).
	MaxGitLabIssueDescription = 1_048_576
)
