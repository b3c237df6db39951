package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/pgtest"
)

// Two kubeplan replicas behind one load balancer share a PostgreSQL store: a webhook
// delivered to both is worked once, a plan made by one is what the other applies, and the
// lock one takes holds on the other. (The forge does not matter here: GitHub drives it.)
func TestReplicasShareOnePostgreSQLStore(t *testing.T) {
	dsn := pgtest.Database(t)
	ns := unique("replicas")
	kubectl(t, "", "create", "namespace", ns)
	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	repo := "acme/" + ns
	base := emu.CreateRepo(repo, map[string]string{
		".kubeplan.yaml":   fmt.Sprintf("version: 1\nprojects:\n  - name: web\n    dir: apps/web\n    namespace: %s\n", ns),
		"apps/web/cm.yaml": journeyConfigMap("v1"),
	})
	emu.SetPermission(repo, "alice", forge.PermWrite)
	emu.SetPermission(repo, "bob", forge.PermWrite)
	a := start(t, emu, dsn, true)
	b := start(t, emu, dsn, true)
	j := &journey{t: t, fc: forges[0], e: a, emu: emu, repo: repo}

	// GitHub retries a delivery that timed out; the retry lands on the other replica.
	n := emu.OpenPR(repo, "alice", "web: v2", base, map[string]string{"apps/web/cm.yaml": journeyConfigMap("v2")})
	opened := emu.GitHubPullRequestEvent(repo, n, "opened", "alice")
	if code := a.answer(forgeemu.SendGitHub(a.url+"/webhooks/github", secret, "pull_request", "d-open", opened)); code != http.StatusAccepted {
		t.Fatalf("replica a answered %d", code)
	}
	if code := b.answer(forgeemu.SendGitHub(b.url+"/webhooks/github", secret, "pull_request", "d-open", opened)); code != http.StatusOK {
		t.Fatalf("replica b answered the redelivery %d, want 200 (already seen)", code)
	}
	head := emu.PRState(repo, n).HeadSHA
	j.status(n, head, "kubeplan/plan", forge.Success, "")

	// /apply reaches replica b, which applies the plan replica a made and stored.
	j.e = b
	before := j.lastCommentID(n)
	j.post(n, "alice", "/apply")
	j.comment(n, before, "Applied prod / web")
	if got := liveValue(t, prod, ns, "settings"); got != "v2" {
		t.Fatalf("settings = %q after /apply, want v2", got)
	}
	// Another pull request's /apply, on replica a, meets the lock taken on replica b.
	j.e = a
	n2 := emu.OpenPR(repo, "bob", "web: v3", base, map[string]string{"apps/web/cm.yaml": journeyConfigMap("v3")})
	j.pull(n2, "opened", "bob")
	j.status(n2, emu.PRState(repo, n2).HeadSHA, "kubeplan/plan", forge.Success, "")
	if r := j.say(n2, "bob", "/apply"); !strings.Contains(r, fmt.Sprintf("#%d", n)) {
		t.Fatalf("/apply on replica a while #%d holds the lock: %q", n, r)
	}

	// Each delivery was worked once, whichever replica took it.
	pr := emu.PRState(repo, n)
	var plans, results int
	for _, c := range pr.Comments {
		switch {
		case c.Author != bot:
		case strings.Contains(c.Body, "kubeplan:apply"):
			results++
		case strings.Contains(c.Body, "prod / web"):
			plans++
		}
	}
	if plans != 1 || results != 1 {
		t.Fatalf("#%d has %d plan comments and %d apply results, want one of each", n, plans, results)
	}
	var applies int
	for _, e := range []*env{a, b} {
		metrics := get(t, e.url+"/metrics")
		if strings.Contains(metrics, `kubeplan_applies_total{outcome="succeeded",trigger="before_merge"} 1`) {
			applies++
		}
	}
	if applies != 1 {
		t.Fatalf("%d replicas report an apply, want exactly one", applies)
	}
}
