package forgeemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// get requests path (under the emulator's root) with the token and decodes the JSON answer.
func get(t *testing.T, e *Emulator, path, auth string) (int, any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, v
}

func keys(t *testing.T, what string, v any, want ...string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: %T, want an object", what, v)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s has no %q: %v", what, k, m)
		}
	}
	return m
}

func TestGitHubShapes(t *testing.T) {
	e := New("tok", "kubeplan[bot]")
	defer e.Close()
	base := e.CreateRepo("acme/platform", map[string]string{"a": "1"})
	n := e.OpenPR("acme/platform", "alice", "t", base, map[string]string{"a": "2"})
	rv := e.AddReview("acme/platform", n, "bob", ReviewApproved)
	e.AddTeamMember("acme/sre", "bob")

	code, v := get(t, e, "/api/v3/orgs/acme/teams/sre/memberships/bob", "tok")
	m := keys(t, "membership", v, "url", "role", "state")
	if code != 200 || m["role"] != "member" || m["state"] != "active" {
		t.Errorf("membership: %d %v", code, m)
	}
	for _, p := range []string{"/api/v3/orgs/acme/teams/sre/memberships/carol", "/api/v3/orgs/acme/teams/nope/memberships/bob"} {
		if code, v := get(t, e, p, "tok"); code != 404 || v.(map[string]any)["message"] != "Not Found" {
			t.Errorf("%s: %d %v", p, code, v)
		}
	}
	if code, _ := get(t, e, "/api/v3/orgs/acme/teams/sre/memberships/bob", ""); code != 401 {
		t.Errorf("membership without a token: %d", code)
	}

	code, v = get(t, e, fmt.Sprintf("/api/v3/repos/acme/platform/pulls/%d/reviews", n), "tok")
	list, _ := v.([]any)
	if code != 200 || len(list) != 1 {
		t.Fatalf("reviews: %d %v", code, v)
	}
	r := keys(t, "review", list[0], "id", "user", "body", "state", "commit_id", "submitted_at", "html_url", "author_association")
	if r["state"] != "APPROVED" || r["commit_id"] != rv.CommitSHA || rv.CommitSHA != e.PRState("acme/platform", n).HeadSHA {
		t.Errorf("review %v", r)
	}

	code, v = get(t, e, fmt.Sprintf("/api/v3/repos/acme/platform/pulls/%d", n), "tok")
	p := keys(t, "pull", v, "mergeable", "mergeable_state", "merged", "merge_commit_sha")
	if code != 200 || p["mergeable"] != true || p["mergeable_state"] != "clean" || p["merged"] != false || p["state"] != "open" {
		t.Errorf("open pull: %v", p)
	}
	e.SetMergeable("acme/platform", n, nil)
	if _, v = get(t, e, fmt.Sprintf("/api/v3/repos/acme/platform/pulls/%d", n), "tok"); v.(map[string]any)["mergeable"] != nil || v.(map[string]any)["mergeable_state"] != "unknown" {
		t.Errorf("mergeable still computing: %v", v)
	}
	sha := e.MergePR("acme/platform", n, "alice")
	_, v = get(t, e, fmt.Sprintf("/api/v3/repos/acme/platform/pulls/%d", n), "tok")
	p = keys(t, "merged pull", v, "merged_at", "closed_at", "merged_by", "merge_commit_sha")
	if p["state"] != "closed" || p["merged"] != true || p["merge_commit_sha"] != sha || p["merged_by"].(map[string]any)["login"] != "alice" {
		t.Errorf("merged pull: %v", p)
	}
	if e.DefaultHead("acme/platform") != sha {
		t.Error("the default branch did not move to the merge commit")
	}
}

func TestGitLabShapes(t *testing.T) {
	e := New("tok", "kubeplan-bot")
	defer e.Close()
	const repo = "acme/infra/platform"
	base := e.CreateRepo(repo, map[string]string{"a": "1"})
	n := e.OpenPR(repo, "alice", "t", base, map[string]string{"a": "2"})
	e.Approve(repo, n, "bob")
	e.AddTeamMember("acme", "bob")
	pid := url.PathEscape(repo)

	code, v := get(t, e, "/api/v4/groups/"+url.PathEscape("acme/infra"), "tok")
	g := keys(t, "group", v, "id", "name", "path", "full_path", "full_name", "parent_id", "web_url")
	if code != 200 || g["full_path"] != "acme/infra" || g["parent_id"] == nil {
		t.Fatalf("group by path: %d %v", code, g)
	}
	if code, v := get(t, e, fmt.Sprintf("/api/v4/groups/%v", g["id"]), "tok"); code != 200 || v.(map[string]any)["full_path"] != "acme/infra" {
		t.Errorf("group by id: %d %v", code, v)
	}
	if code, _ := get(t, e, "/api/v4/groups/nope", "tok"); code != 404 {
		t.Errorf("missing group: %d", code)
	}
	_, v = get(t, e, "/api/v4/users?username=bob", "tok")
	bob := v.([]any)[0].(map[string]any)["id"]
	code, v = get(t, e, fmt.Sprintf("/api/v4/groups/%s/members/all/%v", url.PathEscape("acme/infra"), bob), "tok")
	if m := keys(t, "member", v, "id", "username", "access_level", "state"); code != 200 || m["username"] != "bob" {
		t.Errorf("inherited member: %d %v", code, m)
	}
	if code, _ := get(t, e, fmt.Sprintf("/api/v4/groups/%s/members/%v", url.PathEscape("acme/infra"), bob), "tok"); code != 404 {
		t.Errorf("direct members of acme/infra include bob, a member of acme only: %d", code)
	}

	code, v = get(t, e, fmt.Sprintf("/api/v4/projects/%s/merge_requests/%d/approvals", pid, n), "tok")
	a := keys(t, "approvals", v, "approved_by", "approvals_required", "approvals_left", "state")
	if by, _ := a["approved_by"].([]any); code != 200 || len(by) != 1 || by[0].(map[string]any)["user"].(map[string]any)["username"] != "bob" {
		t.Errorf("approvals: %d %v", code, a)
	}
	e.Unapprove(repo, n, "bob")
	_, v = get(t, e, fmt.Sprintf("/api/v4/projects/%s/merge_requests/%d/approvals", pid, n), "tok")
	if by := v.(map[string]any)["approved_by"].([]any); len(by) != 0 {
		t.Errorf("withdrawn approval still listed: %v", by)
	}

	sha := e.MergePR(repo, n, "alice")
	_, v = get(t, e, fmt.Sprintf("/api/v4/projects/%s/merge_requests/%d", pid, n), "tok")
	mr := keys(t, "merge request", v, "merged_at", "merge_commit_sha", "detailed_merge_status", "merge_status", "merge_user")
	if mr["state"] != "merged" || mr["merge_commit_sha"] != sha || mr["detailed_merge_status"] != "not_open" || mr["merged_at"] == nil {
		t.Errorf("merged MR: %v", mr)
	}
	hook := e.GitLabMergeRequestEvent(repo, n, "merge", "alice")["object_attributes"].(map[string]any)
	if hook["state_id"] != 3 || hook["merge_commit_sha"] != sha || hook["last_commit"].(map[string]any)["id"] != e.PRState(repo, n).HeadSHA {
		t.Errorf("merge hook: %v", hook)
	}
}
