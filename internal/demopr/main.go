// Command demopr is the pull-request half of `make demo`: it runs the forge emulator, starts
// `kubeplan serve` against it and the demo cluster, opens a pull request that changes
// examples/web into examples/web-next, sends GitHub's webhook, prints the plan kubeplan posted,
// then comments /apply, merges, and prints the apply and roll-out results.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/servetest"
)

const (
	token  = "demo-token"
	secret = "demo-webhook-secret"
	repo   = "acme/platform"
)

func main() {
	fs := flag.NewFlagSet("demopr", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the demo cluster (context local)")
	bin := fs.String("kubeplan", "bin/kubeplan", "kubeplan binary")
	_ = fs.Parse(os.Args[1:])
	if err := run(*kubeconfig, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "demopr:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, bin string) error {
	before, err := readTree("examples/web", "apps/web/")
	if err != nil {
		return err
	}
	after, err := readTree("examples/web-next", "apps/web/")
	if err != nil {
		return err
	}
	before[".kubeplan.yaml"] = "version: 1\nprojects:\n- name: web\n  dir: apps/web\n  namespace: demo\n  clusters: [local]\n"
	changes := map[string]string{}
	for p, v := range after {
		if before[p] != v {
			changes[p] = v
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok && strings.HasPrefix(p, "apps/") {
			changes[p] = "" // removed in the change
		}
	}

	emu := forgeemu.New(token, "kubeplan[bot]")
	defer emu.Close()
	base := emu.CreateRepo(repo, before)
	n := emu.OpenPR(repo, "alice", "web: nginx 1.28, feature flags, drop the Service", base, changes)

	work, err := os.MkdirTemp("", "kubeplan-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	emu.SetPermission(repo, "alice", forge.PermWrite)
	// The demo cluster runs no controllers (no Deployment ever becomes available), so the demo
	// does not wait for health; a real cluster does (apply.healthTimeout).
	cfg := fmt.Sprintf("workDir: %s\ngithub:\n  baseURL: %s\nclusters:\n- {name: local, kubeconfig: %s, context: local}\napply: {healthTimeout: 0s}\n", work, emu.GitHubAPI(), kubeconfig)
	serve, err := servetest.Start(bin, work, cfg, "KUBEPLAN_GITHUB_TOKEN="+token, "KUBEPLAN_GITHUB_WEBHOOK_SECRET="+secret)
	if err != nil {
		return err
	}
	defer serve.Stop()

	fmt.Printf("kubeplan serve is listening on %s; the forge emulator plays GitHub at %s\n", serve.URL, emu.GitHubAPI())
	fmt.Printf("pull request %s#%d opened by alice; sending GitHub's pull_request webhook (signed)\n", repo, n)
	resp, err := forgeemu.SendGitHub(serve.URL+"/webhooks/github", secret, "pull_request", "demo-delivery-1", emu.GitHubPullRequestEvent(repo, n, "opened", "alice"))
	if err != nil {
		return err
	}
	resp.Body.Close()
	fmt.Printf("kubeplan answered %s\n", resp.Status)

	waitFor := func(_ *servetest.Serve, done func(forgeemu.PR) bool, what string) (forgeemu.PR, error) {
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if pr := emu.PRState(repo, n); done(pr) {
				return pr, nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return forgeemu.PR{}, fmt.Errorf("no %s within 90s; kubeplan logged:\n%s", what, serve.Logs(30))
	}
	// printNew prints kubeplan's comments after the first skip that carry marker, and returns
	// how many comments the pull request has.
	printNew := func(pr forgeemu.PR, skip int, marker string) int {
		for _, c := range pr.Comments[skip:] {
			if strings.HasPrefix(c.Body, marker) || strings.Contains(c.Body, "released the locks") {
				fmt.Printf("\n----- comment by %s on %s#%d -----\n%s\n----- end of comment -----\n", c.Author, repo, n, strings.TrimSpace(forge.StripPostMarker(c.Body)))
			}
		}
		return len(pr.Comments)
	}
	hasComment := func(pr forgeemu.PR, skip int, marker string) bool {
		for _, c := range pr.Comments[skip:] {
			if strings.HasPrefix(c.Body, marker) {
				return true
			}
		}
		return false
	}
	send := func(url, kind, delivery string, payload any) error {
		resp, err := forgeemu.SendGitHub(url+"/webhooks/github", secret, kind, delivery, payload)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}

	head := emu.PRState(repo, n).HeadSHA
	pr, err := waitFor(serve, func(pr forgeemu.PR) bool {
		st, ok := pr.LatestStatus(head, "kubeplan/plan")
		return ok && st.State != forge.Pending
	}, "the plan")
	if err != nil {
		return err
	}
	for _, ctx := range []string{"kubeplan/plan", "kubeplan/policy", "kubeplan/apply"} {
		if st, ok := pr.LatestStatus(head, ctx); ok {
			fmt.Printf("\ncommit status %s: %s — %s", ctx, st.State, st.Description)
		}
	}
	fmt.Println()
	for _, c := range pr.Comments {
		if _, _, ok := comments.ParsePart(c.Body); ok {
			fmt.Printf("\n----- comment by %s on %s#%d -----\n%s----- end of comment -----\n", c.Author, repo, n, forge.StripPostMarker(c.Body))
		}
	}

	// /apply before merge, then the merge that rolls out.
	printed := len(pr.Comments)
	c := emu.AddComment(repo, n, "alice", "/apply")
	fmt.Printf("\nalice comments /apply\n")
	if err := send(serve.URL, "issue_comment", "demo-delivery-2", emu.GitHubCommentEvent(repo, n, c)); err != nil {
		return err
	}
	if pr, err = waitFor(serve, func(pr forgeemu.PR) bool { return hasComment(pr, printed, comments.ApplyMarker) }, "the apply"); err != nil {
		return err
	}
	printed = printNew(pr, printed, comments.ApplyMarker)
	merge := emu.MergePR(repo, n, "alice")
	fmt.Printf("\nalice merges %s#%d (merge commit %.12s); sending the pull_request closed webhook\n", repo, n, merge)
	if err := send(serve.URL, "pull_request", "demo-delivery-3", emu.GitHubPullRequestEvent(repo, n, "closed", "alice")); err != nil {
		return err
	}
	if pr, err = waitFor(serve, func(pr forgeemu.PR) bool {
		st, ok := pr.LatestStatus(merge, "kubeplan/apply")
		return ok && st.State != forge.Pending
	}, "the roll-out"); err != nil {
		return err
	}
	printNew(pr, printed, comments.ApplyMarker)
	st, _ := pr.LatestStatus(merge, "kubeplan/apply")
	fmt.Printf("\ncommit status kubeplan/apply on the merge commit: %s — %s\n", st.State, st.Description)
	return nil
}

// readTree reads a directory's files keyed by prefix + relative path.
func readTree(dir, prefix string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[prefix+filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out, err
}
