// Command demopr is the pull-request half of `make demo`: it runs the forge emulator, starts
// `kubeplan serve` against it and the demo cluster, opens a pull request that changes
// examples/web into examples/web-next, sends GitHub's webhook, and prints what kubeplan posted.
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
	cfg := fmt.Sprintf("workDir: %s\ngithub:\n  baseURL: %s\nclusters:\n- {name: local, kubeconfig: %s, context: local}\n", work, emu.GitHubAPI(), kubeconfig)
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

	head := emu.PRState(repo, n).HeadSHA
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		pr := emu.PRState(repo, n)
		st, ok := pr.LatestStatus(head, "kubeplan/plan")
		if ok && st.State != forge.Pending {
			fmt.Printf("\ncommit status kubeplan/plan: %s — %s\n", st.State, st.Description)
			for _, c := range pr.Comments {
				if _, _, ok := comments.ParsePart(c.Body); ok {
					fmt.Printf("\n----- comment by %s on %s#%d -----\n%s----- end of comment -----\n", c.Author, repo, n, c.Body)
				}
			}
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no plan within 60s; kubeplan logged:\n%s", serve.Logs(30))
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
