package gitlab_test

import (
	"context"
	"testing"

	"github.com/kubeplan/kubeplan/forge"
	glforge "github.com/kubeplan/kubeplan/forge/gitlab"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
)

// People on GitLab are told their access in GitLab's words: a Reporter is a Reporter, not
// "triage" (GitHub's word for the same rung of kubeplan's scale).
func TestPermissionsAreNamedAsGitLabNamesRoles(t *testing.T) {
	emu := forgeemu.New("tok", "kubeplan-bot")
	defer emu.Close()
	emu.CreateRepo("acme/roles", map[string]string{"README.md": "hi"})
	c, err := glforge.New(glforge.Config{BaseURL: emu.GitLabAPI(), Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	// The emulator keeps each member at the GitLab access level of a permission.
	for _, tc := range []struct {
		user string
		at   forge.Permission
		want string
	}{
		{"gus", forge.PermRead, "Guest"},
		{"rita", forge.PermTriage, "Reporter"},
		{"dev", forge.PermWrite, "Developer"},
		{"max", forge.PermMaintain, "Maintainer"},
		{"olga", forge.PermAdmin, "Owner"},
		{"stranger", "", "no access"},
	} {
		if tc.at != "" {
			emu.SetPermission("acme/roles", tc.user, tc.at)
		}
		p, err := c.Permission(context.Background(), "acme/roles", tc.user)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.PermissionName(p); got != tc.want {
			t.Errorf("%s: permission %q is named %q, want %q", tc.user, p, got, tc.want)
		}
	}
}
