package server_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
)

// A pull request learns which cluster failed, never how kubeplan reaches it: an apiserver
// that stopped and a kubeconfig that is missing are reported by the clusters' registered
// names, without the apiserver's address or the kubeconfig's path (kubeplan's log keeps
// those for the operator).
func TestPlanErrorsNameTheClusterNotItsAddressOrKubeconfig(t *testing.T) {
	stopped, err := kubetest.Start("stopped")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(stopped.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "stopped.kubeconfig")
	if err := os.WriteFile(kubeconfig, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	host, err := url.Parse(stopped.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	if err := stopped.Stop(); err != nil {
		t.Fatal(err)
	}

	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			repo := "acme/" + fc.name + "-scrub"
			emu := forgeemu.New(token, bot)
			defer emu.Close()
			e := start(t, emu, filepath.Join(t.TempDir(), "state.db"), true, func(cfg *config.Config) {
				cfg.Clusters = append(cfg.Clusters,
					cluster.Target{Name: "stopped", Kubeconfig: kubeconfig, Context: "stopped"},
					cluster.Target{Name: "lost", Kubeconfig: filepath.Join(dir, "lost.kubeconfig")})
			})
			base := emu.CreateRepo(repo, map[string]string{
				".kubeplan.yaml":       "projects:\n- {name: web, dir: apps/web, clusters: [stopped, lost]}\n",
				"apps/web/deploy.yaml": deployment("nginx:1.27"),
			})
			n := emu.OpenPR(repo, "alice", "bump", base, map[string]string{"apps/web/deploy.yaml": deployment("nginx:1.28")})
			fc.send(e, "opened", repo, n, "scrub-1", secret)
			pr, st := e.waitStatus(repo, n, emu.PRState(repo, n).HeadSHA)
			c := planComments(pr)
			if st.State != forge.Failure || len(c) != 1 {
				t.Fatalf("status %+v, %d plan comments", st, len(c))
			}
			for _, want := range []string{"cluster stopped: apiserver is unreachable: connection refused",
				"cluster lost: kubeconfig (the kubeconfig of cluster lost): no such file or directory"} {
				if !strings.Contains(c[0].Body, want) {
					t.Errorf("the comment does not say %q:\n%s", want, c[0].Body)
				}
			}
			var said strings.Builder
			said.WriteString(c[0].Body)
			for _, s := range pr.Statuses[pr.HeadSHA] {
				said.WriteString("\n" + s.Description)
			}
			for _, leak := range []string{host.Host, ":" + host.Port(), dir} {
				if strings.Contains(said.String(), leak) {
					t.Errorf("the pull request reads %q:\n%s", leak, said.String())
				}
			}
		})
	}
}
