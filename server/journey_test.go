package server_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/store"
)

// journey drives one forge through the pull-request journey: reviews, comments, merges.
type journey struct {
	t    *testing.T
	fc   forgeCase
	e    *env
	emu  *forgeemu.Emulator
	repo string
	seq  int
}

func (j *journey) delivery() string {
	j.seq++
	return fmt.Sprintf("%s-%d", j.fc.name, j.seq)
}

// approve records an approval by user on the current head and sends the forge's webhook.
func (j *journey) approve(n int, user string) *forgeemu.Review {
	j.t.Helper()
	if j.fc.name == "github" {
		r := j.emu.AddReview(j.repo, n, user, forgeemu.ReviewApproved)
		j.e.answer(forgeemu.SendGitHub(j.e.url+"/webhooks/github", secret, "pull_request_review", j.delivery(), j.emu.GitHubReviewEvent(j.repo, n, r, "submitted")))
		return r
	}
	r := j.emu.Approve(j.repo, n, user)
	j.e.answer(forgeemu.SendGitLab(j.e.url+"/webhooks/gitlab", secret, "Merge Request Hook", j.delivery(), j.emu.GitLabMergeRequestEvent(j.repo, n, "approved", user)))
	return r
}

// withdraw takes an approval back: GitHub dismisses the review, GitLab revokes the approval.
func (j *journey) withdraw(n int, r *forgeemu.Review) {
	j.t.Helper()
	if j.fc.name == "github" {
		d := j.emu.DismissReview(j.repo, n, r.ID)
		j.e.answer(forgeemu.SendGitHub(j.e.url+"/webhooks/github", secret, "pull_request_review", j.delivery(), j.emu.GitHubReviewEvent(j.repo, n, d, "dismissed")))
		return
	}
	j.emu.Unapprove(j.repo, n, r.Author)
	j.e.answer(forgeemu.SendGitLab(j.e.url+"/webhooks/gitlab", secret, "Merge Request Hook", j.delivery(), j.emu.GitLabMergeRequestEvent(j.repo, n, "unapproved", r.Author)))
}

// pull sends the pull request event for kind: opened, pushed, merged or closed.
func (j *journey) pull(n int, kind, sender string) {
	j.t.Helper()
	if j.fc.name == "github" {
		action := map[string]string{"opened": "opened", "pushed": "synchronize", "merged": "closed", "closed": "closed"}[kind]
		j.e.answer(forgeemu.SendGitHub(j.e.url+"/webhooks/github", secret, "pull_request", j.delivery(), j.emu.GitHubPullRequestEvent(j.repo, n, action, sender)))
		return
	}
	action := map[string]string{"opened": "open", "pushed": "update", "merged": "merge", "closed": "close"}[kind]
	j.e.answer(forgeemu.SendGitLab(j.e.url+"/webhooks/gitlab", secret, "Merge Request Hook", j.delivery(), j.emu.GitLabMergeRequestEvent(j.repo, n, action, sender)))
}

// post comments body as author without waiting for an answer.
func (j *journey) post(n int, author, body string) *forgeemu.Comment {
	j.t.Helper()
	c := j.emu.AddComment(j.repo, n, author, body)
	if code := j.fc.comment(j.e, j.repo, n, c, j.delivery()); code != http.StatusAccepted {
		j.t.Fatalf("comment webhook answered %d", code)
	}
	return c
}

// replan comments /plan and waits until that plan is finished.
func (j *journey) replan(n int, author string) {
	j.t.Helper()
	head := j.emu.PRState(j.repo, n).HeadSHA
	before := len(planStatuses(j.emu.PRState(j.repo, n), head))
	j.post(n, author, "/plan")
	j.waitFor(n, "the plan asked for by /plan", func(pr forgeemu.PR) bool {
		st := planStatuses(pr, head)
		return len(st) >= before+2 && st[len(st)-1].State != forge.Pending
	})
}

// say comments body as author and returns kubeplan's reply to them.
func (j *journey) say(n int, author, body string) string {
	j.t.Helper()
	c := j.post(n, author, body)
	var found string
	j.waitFor(n, "a reply to "+body, func(pr forgeemu.PR) bool {
		for _, cm := range pr.Comments {
			if cm.ID > c.ID && cm.Author == bot && strings.HasPrefix(cm.Body, "@"+author+" ") {
				found = cm.Body
				return true
			}
		}
		return false
	})
	return found
}

// waitFor polls the pull request until ok holds.
func (j *journey) waitFor(n int, what string, ok func(forgeemu.PR) bool) forgeemu.PR {
	j.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if pr := j.emu.PRState(j.repo, n); ok(pr) {
			return pr
		}
		time.Sleep(50 * time.Millisecond)
	}
	pr := j.emu.PRState(j.repo, n)
	var last []string
	for _, c := range pr.Comments[max(0, len(pr.Comments)-3):] {
		last = append(last, fmt.Sprintf("%s: %.300s", c.Author, c.Body))
	}
	j.t.Fatalf("waited 90s for %s on #%d; last comments:\n%s", what, n, strings.Join(last, "\n---\n"))
	return pr
}

// status waits until context on sha is set to want and has a description containing text.
func (j *journey) status(n int, sha, context string, want forge.State, text string) forge.Status {
	j.t.Helper()
	var got forge.Status
	j.waitFor(n, fmt.Sprintf("%s %s %q", context, want, text), func(pr forgeemu.PR) bool {
		got, _ = pr.LatestStatus(sha, context)
		return got.State == want && strings.Contains(got.Description, text)
	})
	return got
}

// comment waits for a kubeplan comment containing text that was not there before.
func (j *journey) comment(n int, after int64, text string) string {
	j.t.Helper()
	var found string
	j.waitFor(n, "a comment with "+text, func(pr forgeemu.PR) bool {
		for _, c := range pr.Comments {
			if c.ID > after && c.Author == bot && strings.Contains(c.Body, text) {
				found = c.Body
				return true
			}
		}
		return false
	})
	return found
}

func (j *journey) lastCommentID(n int) int64 {
	pr := j.emu.PRState(j.repo, n)
	if len(pr.Comments) == 0 {
		return 0
	}
	return pr.Comments[len(pr.Comments)-1].ID
}

var configMapGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// liveValue reads data.value of a ConfigMap, "" when it does not exist.
func liveValue(t *testing.T, c *kubetest.Cluster, ns, name string) string {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	u, err := dyn.Resource(configMapGVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	v, _, _ := unstructured.NestedString(u.Object, "data", "value")
	return v
}

// applyAsKubeplan changes a ConfigMap's value with a server-side apply by kubeplan's own field
// manager, as another kubeplan roll-out would.
func applyAsKubeplan(t *testing.T, c *kubetest.Cluster, ns, name, value string) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	u, err := dyn.Resource(configMapGVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u.SetManagedFields(nil)
	u.SetResourceVersion("")
	_ = unstructured.SetNestedField(u.Object, value, "data", "value")
	if _, err := dyn.Resource(configMapGVR).Namespace(ns).Apply(context.Background(), name, u, metav1.ApplyOptions{FieldManager: "kubeplan"}); err != nil {
		t.Fatal(err)
	}
}

// rollOut plays the deployment controller envtest does not run: it marks every Deployment in
// the namespace as rolled out, so kubeplan's health wait sees real status changes.
func rollOut(ctx context.Context, t *testing.T, c *kubetest.Cluster, ns string) {
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Error(err)
		return
	}
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	for ctx.Err() == nil {
		list, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, d := range list.Items {
				replicas, found, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
				if !found {
					replicas = 1
				}
				if og, _, _ := unstructured.NestedInt64(d.Object, "status", "observedGeneration"); og == d.GetGeneration() {
					continue
				}
				now := time.Now().UTC().Format(time.RFC3339)
				d.Object["status"] = map[string]any{
					"observedGeneration": d.GetGeneration(), "replicas": replicas, "updatedReplicas": replicas,
					"readyReplicas": replicas, "availableReplicas": replicas,
					"conditions": []any{
						map[string]any{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastUpdateTime": now, "lastTransitionTime": now},
						map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastUpdateTime": now, "lastTransitionTime": now},
					},
				}
				_, _ = dyn.Resource(gvr).Namespace(ns).UpdateStatus(ctx, &d, metav1.UpdateOptions{})
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func journeyConfigMap(value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {value: %q}\n", value)
}

// The whole pull-request journey on two clusters: review gates, /apply before merge with
// locks, roll-out on merge, policy rules and a stale plan.
func TestPullRequestJourneyOnTwoClusters(t *testing.T) {
	staging, err := kubetest.Start("staging")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = staging.Stop() })

	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			ns := unique("journey-" + fc.name)
			ctx, cancel := context.WithCancel(context.Background())
			var controllers sync.WaitGroup
			for _, c := range []*kubetest.Cluster{prod, staging} {
				controllers.Add(1)
				go func() { defer controllers.Done(); rollOut(ctx, t, c, ns) }()
			}
			t.Cleanup(func() { cancel(); controllers.Wait() })

			emu := forgeemu.New(token, bot)
			t.Cleanup(emu.Close)
			repo := "acme/" + ns
			emu.AddTeamMember("acme/sre", "carol")
			files := map[string]string{
				".kubeplan.yaml":         fmt.Sprintf("version: 1\nprojects:\n  - name: web\n    dir: apps/web\n    namespace: %s\n    clusters: [staging, prod]\n", ns),
				"apps/web/ns.yaml":       fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns),
				"apps/web/deploy.yaml":   deployment("nginx:1.27"),
				"apps/web/settings.yaml": journeyConfigMap("v1"),
			}
			base := emu.CreateRepo(repo, files)
			for user, perm := range map[string]forge.Permission{"alice": forge.PermWrite, "bob": forge.PermRead, "carol": forge.PermWrite, "dave": forge.PermWrite, "erin": forge.PermAdmin} {
				emu.SetPermission(repo, user, perm)
			}
			stagingCluster := cluster.Target{Name: "staging", Kubeconfig: staging.Kubeconfig, Context: "staging"}
			e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(c *config.Config) {
				c.Clusters = append(c.Clusters, stagingCluster)
				c.Apply.HealthTimeout.Duration = 20 * time.Second
				c.Policy = policy.Config{
					Roles:     []policy.RoleRule{{Name: "prod-sre-only", Scope: policy.Scope{Clusters: []string{"prod"}}, Teams: []string{"acme/sre"}, Restrict: policy.RoleApply}},
					Approvals: []policy.ApprovalRule{{Name: "two-with-sre", MinApprovals: 2, Teams: []string{"acme/sre"}}},
					Rules: []policy.ManifestRule{{Name: "no-privileged", Kinds: []string{"Deployment"}, Message: "privileged containers are not allowed",
						Expr: "object.spec.template.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged)"}},
				}
			})
			j := &journey{t: t, fc: fc, e: e, emu: emu, repo: repo}

			// Open → plan on both clusters; the policy waits for approvals.
			pr1 := emu.OpenPR(repo, "alice", "web: v2 settings", base, map[string]string{"apps/web/settings.yaml": journeyConfigMap("v2")})
			j.pull(pr1, "opened", "alice")
			head := emu.PRState(repo, pr1).HeadSHA
			j.status(pr1, head, "kubeplan/plan", forge.Success, "")
			plans := planComments(emu.PRState(repo, pr1))
			if len(plans) != 1 || !strings.Contains(plans[0].Body, "staging / web") || !strings.Contains(plans[0].Body, "prod / web") {
				t.Fatalf("plan comment does not show both clusters:\n%s", plans[0].Body)
			}
			j.status(pr1, head, "kubeplan/policy", forge.Pending, "0 of 2 approvals")
			j.status(pr1, head, "kubeplan/apply", forge.Success, "")

			// A read-only user may not apply.
			if r := j.say(pr1, "bob", "/apply -c staging"); !strings.Contains(r, "refused") || !strings.Contains(r, "(the apply role)") {
				t.Fatalf("/apply by a reader: %q", r)
			}
			// The author's own approval does not count; one approval of two is pending, naming the team.
			j.approve(pr1, "alice")
			j.approve(pr1, "dave")
			st := j.status(pr1, head, "kubeplan/policy", forge.Pending, "1 of 2 approvals")
			if !strings.Contains(st.Description, "acme/sre") {
				t.Fatalf("pending policy does not name the team it needs: %q", st.Description)
			}
			sre := j.approve(pr1, "carol")
			j.status(pr1, head, "kubeplan/policy", forge.Success, "2 of 2")
			// A dismissed (GitHub) or revoked (GitLab) approval no longer counts.
			j.withdraw(pr1, sre)
			j.status(pr1, head, "kubeplan/policy", forge.Pending, "1 of 2 approvals")
			sre = j.approve(pr1, "carol")
			j.status(pr1, head, "kubeplan/policy", forge.Success, "2 of 2")

			// A push makes the approvals stale: pending again, then approved again. (On GitLab,
			// whose approvals outlive a push unless the project resets them, people approve again
			// by revoking and approving.)
			head = emu.Push(repo, pr1, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28")})
			j.pull(pr1, "pushed", "alice")
			j.status(pr1, head, "kubeplan/plan", forge.Success, "")
			j.status(pr1, head, "kubeplan/policy", forge.Pending, "0 of 2")
			if fc.name == "gitlab" {
				for _, who := range []string{"dave", "carol"} {
					j.emu.Unapprove(repo, pr1, who)
				}
			}
			j.approve(pr1, "dave")
			j.approve(pr1, "carol")
			j.status(pr1, head, "kubeplan/policy", forge.Success, "")

			// dave may apply to staging, but prod is restricted to the SRE team, and the refusal names the rule.
			if r := j.say(pr1, "dave", "/apply -c prod"); !strings.Contains(r, "prod-sre-only") {
				t.Fatalf("/apply on prod by a non-SRE: %q", r)
			}
			before := j.lastCommentID(pr1)
			j.post(pr1, "dave", "/apply -c staging")
			result := j.comment(pr1, before, "Applied staging / web")
			if !strings.Contains(result, "`Deployment "+ns+"/web` | created | Current") || !strings.Contains(result, "`ConfigMap "+ns+"/settings` | created | Current") {
				t.Fatalf("apply result comment:\n%s", result)
			}
			if got := liveValue(t, staging, ns, "settings"); got != "v2" {
				t.Fatalf("staging settings = %q after /apply, want v2", got)
			}
			if got := liveValue(t, prod, ns, "settings"); got != "" {
				t.Fatalf("prod was touched by an apply to staging: settings = %q", got)
			}
			j.status(pr1, head, "kubeplan/apply", forge.Success, "web on staging")

			// A second pull request sees the lock in its plan, and its /apply is refused naming the holder.
			pr2 := emu.OpenPR(repo, "alice", "web: v3", base, map[string]string{"apps/web/settings.yaml": journeyConfigMap("v3")})
			j.pull(pr2, "opened", "alice")
			head2 := emu.PRState(repo, pr2).HeadSHA
			j.status(pr2, head2, "kubeplan/plan", forge.Success, "")
			if p := planComments(emu.PRState(repo, pr2)); !strings.Contains(p[0].Body, fmt.Sprintf("locked by #%d", pr1)) {
				t.Fatalf("second PR's plan does not show the lock:\n%s", p[0].Body)
			}
			j.approve(pr2, "dave")
			j.approve(pr2, "carol")
			j.status(pr2, head2, "kubeplan/policy", forge.Success, "")
			if r := j.say(pr2, "carol", "/apply -c staging"); !strings.Contains(r, fmt.Sprintf("locked by #%d", pr1)) {
				t.Fatalf("/apply on a locked project: %q", r)
			}
			// Releasing another pull request's lock needs an admin.
			if r := j.say(pr2, "dave", "/unlock -p web"); !strings.Contains(r, "refused") || !strings.Contains(r, "admin") {
				t.Fatalf("/unlock by a non-admin: %q", r)
			}

			// Merge → rolled out to prod (and staging, unchanged), locks released.
			mergeSHA := emu.MergePR(repo, pr1, "carol")
			before = j.lastCommentID(pr1)
			j.pull(pr1, "merged", "carol")
			j.comment(pr1, before, "Rolled out on merge: prod / web")
			j.comment(pr1, before, "released the locks")
			j.status(pr1, mergeSHA, "kubeplan/apply", forge.Success, "Rolled out")
			if got := liveValue(t, prod, ns, "settings"); got != "v2" {
				t.Fatalf("prod settings = %q after the merge, want v2", got)
			}

			// Stale plan: the live object changes after the plan was made (here a hotfix another
			// kubeplan roll-out applied) → re-plan instead of apply.
			j.replan(pr2, "carol")
			applyAsKubeplan(t, staging, ns, "settings", "hotfix")
			if r := j.say(pr2, "carol", "/apply -c staging"); !strings.Contains(r, "nothing was applied") || !strings.Contains(r, "live objects changed") {
				t.Fatalf("/apply with a stale plan: %q", r)
			}
			if got := liveValue(t, staging, ns, "settings"); got != "hotfix" {
				t.Fatalf("a stale plan was applied: staging settings = %q", got)
			}
			if p := planComments(emu.PRState(repo, pr2)); !strings.Contains(p[0].Body, `-  value: hotfix`) {
				t.Fatalf("the new plan does not show the live change:\n%s", p[0].Body)
			}
			before = j.lastCommentID(pr2)
			j.post(pr2, "carol", "/apply -c staging")
			j.comment(pr2, before, "Applied staging / web")
			if got := liveValue(t, staging, ns, "settings"); got != "v3" {
				t.Fatalf("staging settings = %q, want v3", got)
			}
			// An edit by hand makes another field manager own the value: /apply says so instead of failing halfway.
			if _, err := staging.Kubectl(context.Background(), "", "-n", ns, "patch", "configmap", "settings", "--type=merge", "-p", `{"data":{"value":"edited-by-hand"}}`); err != nil {
				t.Fatal(err)
			}
			j.replan(pr2, "carol")
			if p := planComments(emu.PRState(repo, pr2)); !strings.Contains(p[0].Body, `takes over .data.value from field manager "kubectl-patch"`) {
				t.Fatalf("the plan does not warn about the takeover:\n%s", p[0].Body)
			}
			if r := j.say(pr2, "carol", "/apply -c staging"); !strings.Contains(r, "apply.force: true") {
				t.Fatalf("/apply over another manager's field: %q", r)
			}
			// Closing without merging releases the lock and says what is live but unmerged.
			emu.ClosePR(repo, pr2)
			before = j.lastCommentID(pr2)
			j.pull(pr2, "closed", "alice")
			closing := j.comment(pr2, before, "live but not merged")
			if !strings.Contains(closing, "`web` on `staging`") || !strings.Contains(closing, "Released the locks") {
				t.Fatalf("close comment:\n%s", closing)
			}

			// A deny rule fails the policy, naming the rule.
			privileged := strings.Replace(deployment("nginx:1.28"), `image: "nginx:1.28"`, `image: "nginx:1.28", securityContext: {privileged: true}`, 1)
			pr3 := emu.OpenPR(repo, "alice", "privileged", emu.DefaultHead(repo), map[string]string{"apps/web/deploy.yaml": privileged})
			j.pull(pr3, "opened", "alice")
			head3 := emu.PRState(repo, pr3).HeadSHA
			st = j.status(pr3, head3, "kubeplan/policy", forge.Failure, "no-privileged")
			if p := planComments(emu.PRState(repo, pr3)); !strings.Contains(p[0].Body, "privileged containers are not allowed") {
				t.Fatalf("plan comment does not show the denial:\n%s", p[0].Body)
			}
			// Approved and merged anyway by an SRE (branch protection off): the denied change is
			// not rolled out.
			j.approve(pr3, "dave")
			j.approve(pr3, "carol")
			merge3 := emu.MergePR(repo, pr3, "carol")
			before = j.lastCommentID(pr3)
			j.pull(pr3, "merged", "carol")
			if denied := j.comment(pr3, before, "kubeplan did not roll out `web` on `prod`"); !strings.Contains(denied, "break deny rules") {
				t.Fatalf("roll-out of a denied change:\n%s", denied)
			}
			j.status(pr3, merge3, "kubeplan/apply", forge.Failure, "Roll-out incomplete")
		})
	}
}

// An apply interrupted by a crash is reported and planned again, never re-run blindly.
func TestInterruptedApplyIsReplannedNotRepeated(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			ns := unique("interrupted-" + fc.name)
			emu, repo, n := bumpPR(t, ns, "")
			emu.SetPermission(repo, "alice", forge.PermAdmin)
			emu.SetPermission(repo, "dave", forge.PermWrite)
			state := filepath.Join(t.TempDir(), "state.db")
			e := start(t, emu, state, true)
			j := &journey{t: t, fc: fc, e: e, emu: emu, repo: repo}
			j.pull(n, "opened", "alice")
			head := emu.PRState(repo, n).HeadSHA
			j.status(n, head, "kubeplan/plan", forge.Success, "")
			e.stop()

			// What a crash mid-apply leaves behind: the apply recorded as running.
			q, err := store.Open(context.Background(), state)
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%s:%s#%d", fc.name, repo, n)
			if _, err := q.State().StartApply(context.Background(), store.ApplyRecord{PR: key, Target: store.Target{Project: "web", Cluster: "prod"},
				SHA: head, PlanHash: "h", Trigger: store.BeforeMerge, Actor: "dave"}); err != nil {
				t.Fatal(err)
			}
			q.Close()

			e = start(t, emu, state, true)
			j.e = e
			r := j.say(n, "dave", "/apply")
			if !strings.Contains(r, "kubeplan stopped while applying `web` on `prod`") || !strings.Contains(r, "Nothing was applied again") {
				t.Fatalf("reply after an interrupted apply: %q", r)
			}
			pr := emu.PRState(repo, n)
			if c := planComments(pr); len(c) != 1 || !strings.Contains(c[0].Body, "prod / web — 1 to create") {
				t.Fatalf("plan comment after the interrupted apply: %+v", c)
			}
			e.stop()
			q, err = store.Open(context.Background(), state)
			if err != nil {
				t.Fatal(err)
			}
			history, err := q.State().Applies(context.Background(), key)
			if err != nil || len(history) != 1 || history[0].State != store.ApplyInterrupted {
				t.Fatalf("history after the report: %+v, %v; want the apply marked interrupted", history, err)
			}

			// A roll-out on merge cut short: the next run plans again, says so, and finishes it.
			if _, err := q.State().StartApply(context.Background(), store.ApplyRecord{PR: key, Target: store.Target{Project: "web", Cluster: "prod"},
				SHA: head, PlanHash: "h", Trigger: store.OnMerge, Actor: "alice"}); err != nil {
				t.Fatal(err)
			}
			q.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); rollOut(ctx, t, prod, ns) }()
			t.Cleanup(func() { cancel(); <-done })
			j.e = start(t, emu, state, true)
			mergeSHA := emu.MergePR(repo, n, "alice")
			before := j.lastCommentID(n)
			j.pull(n, "merged", "alice")
			result := j.comment(n, before, "Rolled out on merge: prod / web")
			if !strings.Contains(result, "kubeplan stopped during an earlier apply of this project") || !strings.Contains(result, "1 created") {
				t.Fatalf("roll-out after an interrupted one:\n%s", result)
			}
			j.status(n, mergeSHA, "kubeplan/apply", forge.Success, "Rolled out")
		})
	}
}

// Locks can be released by an admin from another pull request; a repository adds a warn rule
// where the server lets it, and is refused where it does not.
func TestAdminUnlockAndRepositoryRules(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			ns := unique("unlock-" + fc.name)
			repoRules := "policy:\n  rules:\n  - name: internal-registry\n    kinds: [Deployment]\n    severity: warn\n" +
				"    expr: \"object.spec.template.spec.containers.all(c, c.image.startsWith('registry.acme.example/'))\"\n" +
				"    message: images should come from registry.acme.example\n"
			emu, repo, pr1 := bumpPR(t, ns, repoRules)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); rollOut(ctx, t, prod, ns) }()
			t.Cleanup(func() { cancel(); <-done })
			emu.SetPermission(repo, "dave", forge.PermWrite)
			emu.SetPermission(repo, "erin", forge.PermAdmin)
			e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(c *config.Config) {
				c.Policy.AllowedOverrides = []string{"rules"}
			})
			j := &journey{t: t, fc: fc, e: e, emu: emu, repo: repo}

			j.pull(pr1, "opened", "alice")
			head := emu.PRState(repo, pr1).HeadSHA
			j.status(pr1, head, "kubeplan/plan", forge.Success, "")
			// A warn rule shows in the comment and does not hold the merge.
			if p := planComments(emu.PRState(repo, pr1)); !strings.Contains(p[0].Body, `policy rule "internal-registry" warns: images should come from registry.acme.example`) {
				t.Fatalf("plan comment does not show the repository's warn rule:\n%s", p[0].Body)
			}
			j.status(pr1, head, "kubeplan/policy", forge.Success, "No approval rule applies")
			if r := j.say(pr1, "dave", "/plan -p nope"); !strings.Contains(r, "no project this pull request affects matches project nope") {
				t.Fatalf("/plan -p nope: %q", r)
			}

			before := j.lastCommentID(pr1)
			j.post(pr1, "dave", "/apply")
			j.comment(pr1, before, "Applied prod / web")

			// A second pull request: an admin releases the first one's lock from it.
			pr2 := emu.OpenPR(repo, "alice", "again", emu.DefaultHead(repo), map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.29")})
			j.pull(pr2, "opened", "alice")
			j.status(pr2, emu.PRState(repo, pr2).HeadSHA, "kubeplan/plan", forge.Success, "")
			if r := j.say(pr2, "dave", "/unlock"); !strings.Contains(r, "this pull request holds no lock") || !strings.Contains(r, fmt.Sprintf("`web` on `prod` by #%d", pr1)) {
				t.Fatalf("/unlock without a lock: %q", r)
			}
			before = j.lastCommentID(pr1)
			if r := j.say(pr2, "erin", "/unlock -p web"); !strings.Contains(r, "released `web` on `prod`") {
				t.Fatalf("/unlock by an admin: %q", r)
			}
			j.comment(pr1, before, "was released by @erin")

			// A pull request that gives itself approval rules the server does not allow: its plan says so.
			pr3 := emu.OpenPR(repo, "alice", "lower the bar", emu.DefaultHead(repo), map[string]string{
				".kubeplan.yaml":       fmt.Sprintf(kubeplanYAML, ns) + "policy:\n  approvals:\n  - name: none\n    minApprovals: 0\n",
				"apps/web/deploy.yaml": deployment("nginx:1.30"),
			})
			j.pull(pr3, "opened", "alice")
			st := j.status(pr3, emu.PRState(repo, pr3).HeadSHA, "kubeplan/plan", forge.Failure, "")
			if !strings.Contains(st.Description, "approvals") {
				t.Fatalf("plan status for a forbidden override: %q", st.Description)
			}
		})
	}
}

// Apply modes per project: required before merge holds kubeplan/apply pending, disabled refuses
// /apply, on_merge false is not rolled out; an unmergeable pull request is not applied.
func TestApplyModesAndMergeability(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			ns := unique("modes-" + fc.name)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); rollOut(ctx, t, prod, ns) }()
			t.Cleanup(func() { cancel(); <-done })
			kubectl(t, "", "create", "namespace", ns)

			emu := forgeemu.New(token, bot)
			t.Cleanup(emu.Close)
			repo := "acme/" + ns
			config := fmt.Sprintf(`version: 1
projects:
- name: web
  dir: apps/web
  namespace: %[1]s
  apply: {before_merge: required}
- name: jobs
  dir: apps/jobs
  namespace: %[1]s
  apply: {before_merge: disabled, on_merge: false}
`, ns)
			jobs := func(v string) string {
				return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: jobs}\ndata: {value: %q}\n", v)
			}
			base := emu.CreateRepo(repo, map[string]string{".kubeplan.yaml": config, "apps/web/deploy.yaml": deployment("nginx:1.27"), "apps/jobs/cm.yaml": jobs("a")})
			emu.SetPermission(repo, "dave", forge.PermWrite)
			n := emu.OpenPR(repo, "alice", "both", base, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28"), "apps/jobs/cm.yaml": jobs("b")})
			e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true)
			j := &journey{t: t, fc: fc, e: e, emu: emu, repo: repo}

			j.pull(n, "opened", "alice")
			head := emu.PRState(repo, n).HeadSHA
			j.status(n, head, "kubeplan/plan", forge.Success, "")
			j.status(n, head, "kubeplan/apply", forge.Pending, "Needs /apply before merge: web on prod")

			if r := j.say(n, "dave", "/apply -p jobs"); !strings.Contains(r, "apply.before_merge: disabled") {
				t.Fatalf("/apply of a project that is not applied before merge: %q", r)
			}
			emu.SetMergeable(repo, n, forgeemu.Bool(false))
			if r := j.say(n, "dave", "/apply -p web"); !strings.Contains(r, "cannot be merged") {
				t.Fatalf("/apply of an unmergeable pull request: %q", r)
			}
			emu.SetMergeable(repo, n, forgeemu.Bool(true))
			// The forge fails while kubeplan posts (the 👀 reaction, then the result): the job
			// runs again, posts the stored result once and does not apply again.
			path := map[string]string{"github": "/comments", "gitlab": "/notes"}[fc.name]
			emu.FailRequests(http.MethodPost, path, 2, http.StatusBadGateway)
			before := j.lastCommentID(n)
			j.post(n, "dave", "/apply -p web")
			j.comment(n, before, "Applied prod / web")
			j.status(n, head, "kubeplan/apply", forge.Success, "Applied: web on prod")
			results := 0
			for _, c := range emu.PRState(repo, n).Comments {
				if strings.Contains(c.Body, "Applied prod / web") {
					results++
				}
			}
			if results != 1 {
				t.Fatalf("%d apply result comments after the outage, want 1", results)
			}
			if got := liveValue(t, prod, ns, "jobs"); got != "" {
				t.Fatalf("jobs was applied before merge: %q", got)
			}
			metrics := get(t, e.url+"/metrics")
			// One apply, though its job ran twice.
			for _, want := range []string{`kubeplan_applies_total{outcome="succeeded",trigger="before_merge"} 1`, "kubeplan_locks_held 1", "kubeplan_apply_duration_seconds_count 1"} {
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}

			mergeSHA := emu.MergePR(repo, n, "dave")
			j.pull(n, "merged", "dave")
			j.status(n, mergeSHA, "kubeplan/apply", forge.Success, "Rolled out 1 project")
			if got := liveValue(t, prod, ns, "jobs"); got != "" {
				t.Fatalf("jobs (on_merge: false) was rolled out: %q", got)
			}
		})
	}
}

// Code owners come from the base branch: a pull request that names new owners for its own files
// still needs the owners the base branch names.
func TestCodeOwnersComeFromTheBaseBranch(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			ns := unique("owners-" + fc.name)
			emu, repo, _ := bumpPR(t, ns, "")
			base := emu.DefaultHead(repo)
			// The owners file lands on the default branch first.
			owners := emu.OpenPR(repo, "alice", "owners", base, map[string]string{".github/CODEOWNERS": "/apps/web/ @carol\n"})
			base = emu.MergePR(repo, owners, "alice")
			e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(c *config.Config) {
				c.Policy.Approvals = []policy.ApprovalRule{{Name: "owners", CodeOwners: true}}
			})
			j := &journey{t: t, fc: fc, e: e, emu: emu, repo: repo}

			n := emu.OpenPR(repo, "alice", "new owner", base, map[string]string{
				".github/CODEOWNERS":   "/apps/web/ @dave\n",
				"apps/web/deploy.yaml": deployment("nginx:1.31"),
			})
			j.pull(n, "opened", "alice")
			head := emu.PRState(repo, n).HeadSHA
			j.status(n, head, "kubeplan/plan", forge.Success, "")
			j.status(n, head, "kubeplan/policy", forge.Pending, "")
			j.approve(n, "dave")
			st := j.status(n, head, "kubeplan/policy", forge.Pending, "1 approval")
			if !strings.Contains(st.Description, "needs a code owner (@carol)") {
				t.Fatalf("policy after the pull request's own new owner approved: %q (want it to still need @carol)", st.Description)
			}
			j.approve(n, "carol")
			j.status(n, head, "kubeplan/policy", forge.Success, "")
		})
	}
}

// A roll-out to several clusters applies them side by side: a deployment still rolling out
// on one cluster does not hold up the others, and the merge is done when all are healthy.
// (The scheduling is the workflow's and the same for both forges: GitHub drives it here.)
func TestRollOutAppliesClustersSideBySide(t *testing.T) {
	staging, err := kubetest.Start("staging")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = staging.Stop() })
	ns := unique("side-by-side")
	for _, c := range []*kubetest.Cluster{prod, staging} {
		if _, err := c.Kubectl(context.Background(), "", "create", "namespace", ns); err != nil {
			t.Fatal(err)
		}
	}
	// prod's deployment controller runs from the start; staging's only when the test says.
	ctx, cancel := context.WithCancel(context.Background())
	var controllers sync.WaitGroup
	controllers.Add(1)
	go func() { defer controllers.Done(); rollOut(ctx, t, prod, ns) }()
	t.Cleanup(func() { cancel(); controllers.Wait() })

	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	repo := "acme/" + ns
	base := emu.CreateRepo(repo, map[string]string{
		// staging first: applied one after another, staging's wait would hold up prod.
		".kubeplan.yaml":       fmt.Sprintf("version: 1\nprojects:\n  - name: web\n    dir: apps/web\n    namespace: %s\n    clusters: [staging, prod]\n", ns),
		"apps/web/deploy.yaml": deployment("nginx:1.27"),
	})
	emu.SetPermission(repo, "alice", forge.PermWrite)
	e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(c *config.Config) {
		c.Clusters = append(c.Clusters, cluster.Target{Name: "staging", Kubeconfig: staging.Kubeconfig, Context: "staging"})
		c.Apply.HealthTimeout.Duration = time.Minute
		c.JobTimeout.Duration = 2 * time.Minute
	})
	j := &journey{t: t, fc: forges[0], e: e, emu: emu, repo: repo}

	n := emu.OpenPR(repo, "alice", "web: nginx 1.28", base, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28")})
	j.pull(n, "opened", "alice")
	j.status(n, emu.PRState(repo, n).HeadSHA, "kubeplan/plan", forge.Success, "")
	before := j.lastCommentID(n)
	mergeSHA := emu.MergePR(repo, n, "alice")
	j.pull(n, "merged", "alice")

	// prod is rolled out and reported while staging still waits for its deployment.
	j.comment(n, before, "Rolled out on merge: prod / web")
	for _, c := range emu.PRState(repo, n).Comments {
		if c.ID > before && strings.Contains(c.Body, "staging / web") {
			t.Fatalf("staging was reported before its deployment became healthy:\n%s", c.Body)
		}
	}
	if st, _ := emu.PRState(repo, n).LatestStatus(mergeSHA, "kubeplan/apply"); st.State != forge.Pending {
		t.Fatalf("kubeplan/apply is %s (%q) while staging is still rolling out, want pending", st.State, st.Description)
	}

	// staging's controller catches up: its result follows and the roll-out is complete.
	controllers.Add(1)
	go func() { defer controllers.Done(); rollOut(ctx, t, staging, ns) }()
	result := j.comment(n, before, "Rolled out on merge: staging / web")
	if !strings.Contains(result, "| created | Current |") {
		t.Errorf("staging's result does not show its deployment created and healthy:\n%s", result)
	}
	j.status(n, mergeSHA, "kubeplan/apply", forge.Success, "Rolled out 2 project")
}
