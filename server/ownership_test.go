package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kubeplan/kubeplan/access"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
)

var runs atomic.Int64

// owns reads the repository an inventory records as its owner.
func owns(t *testing.T, ns, project string) string {
	t.Helper()
	out, err := prod.Kubectl(context.Background(), "", "-n", ns, "get", "configmap", "kubeplan-"+project, "-o", `jsonpath={.metadata.annotations.kubeplan\.dev/repository}`)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exists reports whether kubectl finds an object that is not being deleted.
func exists(t *testing.T, args ...string) bool {
	t.Helper()
	out, err := prod.Kubectl(context.Background(), "", append(args, "--ignore-not-found", "-o", "jsonpath={.metadata.name}/{.metadata.deletionTimestamp}")...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.HasSuffix(out, "/") && out != "/"
}

// Two repositories declare the same project name and namespace (GitHub drives it; ownership
// is the workflow's, the same for both forges). The owner's project is out of the stranger's
// reach: the stranger's plan is refused naming the owner, with none of the owner's objects in
// the comment, and its /apply and merge change nothing. The owner's own deletion of a
// Namespace is shown loudly and refused without apply.allow_destructive. Access rules then
// close the cluster to the stranger altogether.
func TestTwoRepositoriesDeclaringTheSameProject(t *testing.T) {
	run := runs.Add(1)
	ns := fmt.Sprintf("same-name-%d", run)
	legacy := ns + "-legacy"
	kubectl(t, "", "create", "namespace", ns)
	emu := forgeemu.New(token, bot)
	t.Cleanup(emu.Close)
	ownerRepo, strangerRepo := fmt.Sprintf("acme/shop-%d", run), fmt.Sprintf("mallory/copycat-%d", run)
	ownerKey := "github:" + ownerRepo
	project := fmt.Sprintf(kubeplanYAML, ns) // project web in ns, on prod
	state := filepath.Join(t.TempDir(), "state.db")
	e := start(t, emu, state, true)

	// The owner applies its project: a ConfigMap with a value nobody else should read, and a
	// Namespace of its own holding someone's data.
	ownerBase := emu.CreateRepo(ownerRepo, map[string]string{".kubeplan.yaml": project, "README.md": "# shop\n"})
	emu.SetPermission(ownerRepo, "alice", forge.PermWrite)
	owner := &journey{t: t, fc: forges[0], e: e, emu: emu, repo: ownerRepo}
	n := emu.OpenPR(ownerRepo, "alice", "web", ownerBase, map[string]string{
		"apps/web/settings.yaml": journeyConfigMap("owner-secret-value"),
		"apps/web/legacy.yaml":   fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", legacy),
	})
	owner.pull(n, "opened", "alice")
	owner.status(n, emu.PRState(ownerRepo, n).HeadSHA, "kubeplan/plan", forge.Success, "")
	before := owner.lastCommentID(n)
	owner.post(n, "alice", "/apply")
	owner.comment(n, before, "Applied prod / web")
	if got := owns(t, ns, "web"); got != ownerKey {
		t.Fatalf("the inventory records owner %q after the owner's apply, want %s", got, ownerKey)
	}
	kubectl(t, journeyConfigMap("precious"), "apply", "-n", legacy, "-f", "-")
	ownerBase = emu.MergePR(ownerRepo, n, "alice")
	before = owner.lastCommentID(n)
	owner.pull(n, "merged", "alice")
	owner.comment(n, before, "released the locks")

	// The stranger's repository declares the same project and namespace.
	strangerBase := emu.CreateRepo(strangerRepo, map[string]string{".kubeplan.yaml": project})
	emu.SetPermission(strangerRepo, "mallory", forge.PermAdmin)
	stranger := &journey{t: t, fc: forges[0], e: e, emu: emu, repo: strangerRepo, seq: 1000} // delivery ids of its own
	m := emu.OpenPR(strangerRepo, "mallory", "innocent", strangerBase, map[string]string{
		"apps/web/mine.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\ndata: {value: x}\n",
	})
	stranger.pull(m, "opened", "mallory")
	st := stranger.status(m, emu.PRState(strangerRepo, m).HeadSHA, "kubeplan/plan", forge.Failure, "")
	body := planComments(emu.PRState(strangerRepo, m))[0].Body
	refusal := fmt.Sprintf("inventory configmap %s/kubeplan-web belongs to repository %s, not to github:%s", ns, ownerKey, strangerRepo)
	if !strings.Contains(body, refusal) || !strings.Contains(st.Description, "belongs to repository "+ownerKey) {
		t.Fatalf("the stranger's plan does not refuse naming the owner (status %q):\n%s", st.Description, body)
	}
	for _, leak := range []string{"will be deleted", "owner-secret-value", "settings", legacy, "precious"} {
		if strings.Contains(body, leak) {
			t.Errorf("the stranger's plan comment shows %q:\n%s", leak, body)
		}
	}
	if r := stranger.say(m, "mallory", "/apply"); !strings.Contains(r, "refused") || !strings.Contains(r, "belongs to repository "+ownerKey) {
		t.Fatalf("the stranger's /apply: %q", r)
	}
	merged := emu.MergePR(strangerRepo, m, "mallory")
	before = stranger.lastCommentID(m)
	stranger.pull(m, "merged", "mallory")
	stranger.comment(m, before, "kubeplan could not roll out `web` on `prod`")
	stranger.status(m, merged, "kubeplan/apply", forge.Failure, "Roll-out incomplete")
	if liveValue(t, prod, ns, "settings") != "owner-secret-value" || liveValue(t, prod, ns, "mine") != "" || owns(t, ns, "web") != ownerKey {
		t.Fatal("the stranger's merge changed the owner's project")
	}

	// The owner drops its Namespace: the plan says loudly what that takes down, and neither
	// /apply nor the merge carries it out without apply.allow_destructive.
	n = emu.OpenPR(ownerRepo, "alice", "drop legacy", ownerBase, map[string]string{"apps/web/legacy.yaml": ""})
	owner.pull(n, "opened", "alice")
	owner.status(n, emu.PRState(ownerRepo, n).HeadSHA, "kubeplan/plan", forge.Success, "0 to create, 0 to change, 1 to delete (1 destructive)")
	body = planComments(emu.PRState(ownerRepo, n))[0].Body
	for _, want := range []string{
		"💥 **1 destructive**",
		"prod / web — 0 to create, 0 to change, 1 to delete — 💥 1 destructive deletion",
		"> - 💥 Namespace " + legacy + " takes down everything in it: 1 object (1 ConfigMap)",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the owner's plan comment lacks %q:\n%s", want, body)
		}
	}
	if r := owner.say(n, "alice", "/apply"); !strings.Contains(r, "refused") || !strings.Contains(r, "apply.allow_destructive: true") {
		t.Fatalf("/apply of a destructive plan without allow_destructive: %q", r)
	}
	if !exists(t, "get", "namespace", legacy) || liveValue(t, prod, legacy, "settings") != "precious" {
		t.Fatal("a refused destructive /apply deleted the namespace or what it holds")
	}
	merged = emu.MergePR(ownerRepo, n, "alice")
	before = owner.lastCommentID(n)
	owner.pull(n, "merged", "alice")
	if c := owner.comment(n, before, "kubeplan did not roll out `web` on `prod`"); !strings.Contains(c, "allow_destructive") {
		t.Errorf("roll-out refusal:\n%s", c)
	}
	owner.status(n, merged, "kubeplan/apply", forge.Failure, "Roll-out incomplete")
	if !exists(t, "get", "namespace", legacy) || liveValue(t, prod, legacy, "settings") != "precious" {
		t.Fatal("a refused destructive roll-out deleted the namespace or what it holds")
	}

	// Access rules: prod is the shop's, in its namespaces only. The stranger cannot deploy there
	// at all, whatever the project is called.
	e.stop()
	e = start(t, emu, state, true, func(c *config.Config) {
		c.Access = access.Rules{{Repositories: []string{ownerRepo}, Clusters: []string{"prod"}, Namespaces: []string{ns, legacy}}}
	})
	stranger.e = e
	m = emu.OpenPR(strangerRepo, "mallory", "elsewhere", emu.DefaultHead(strangerRepo), map[string]string{
		".kubeplan.yaml":     strings.Replace(project, "name: web", "name: tools", 1),
		"apps/web/mine.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine2}\ndata: {value: x}\n",
	})
	stranger.pull(m, "opened", "mallory")
	stranger.status(m, emu.PRState(strangerRepo, m).HeadSHA, "kubeplan/plan", forge.Failure, "")
	body = planComments(emu.PRState(strangerRepo, m))[0].Body
	if want := fmt.Sprintf("repository github:%s may not deploy to cluster prod: no rule of the server's access list grants it that cluster", strangerRepo); !strings.Contains(body, want) {
		t.Fatalf("the stranger's plan under access rules lacks %q:\n%s", want, body)
	}
}
