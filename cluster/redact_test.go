package cluster_test

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kubeplan/kubeplan/cluster"
)

func writeKubeconfig(t *testing.T, dir, name, server, user string) string {
	t.Helper()
	path := filepath.Join(dir, name+".kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, certificate-authority: %q, proxy-url: "http://10.9.9.9:3128"}}]
users: [{name: u, user: %s}]
contexts: [{name: %s, context: {cluster: c, user: u}}]
current-context: %s
`, server, filepath.Join(dir, name+"-ca.crt"), user, name, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// What a pull request may read about a cluster is its registered name: never the apiserver's
// address, the kubeconfig's path, a credential file or a token.
func TestRedactNamesTheClusterInsteadOfItsAddressAndFiles(t *testing.T) {
	dir := t.TempDir()
	prod := writeKubeconfig(t, dir, "prod", "https://10.20.30.40:6443", `{token: s3cr3t-t0ken-value}`)
	edge := writeKubeconfig(t, dir, "edge", "https://kube.edge.internal/k8s/clusters/c-42", `{client-certificate: `+filepath.Join(dir, "edge.crt")+`, client-key: `+filepath.Join(dir, "edge.key")+`}`)
	missing := filepath.Join(dir, "gone.kubeconfig")
	reg, err := cluster.NewRegistry("prod",
		cluster.Target{Name: "prod", Kubeconfig: prod, Context: "prod"},
		cluster.Target{Name: "edge", Kubeconfig: edge, Context: "edge"},
		cluster.Target{Name: "gone", Kubeconfig: missing})
	if err != nil {
		t.Fatal(err)
	}
	r := cluster.NewRedactor(reg)
	for _, tc := range []struct{ in, want string }{
		{"cluster prod: apiserver https://10.20.30.40:6443 is unreachable: connection refused",
			"cluster prod: apiserver is unreachable: connection refused"},
		{`cluster prod: dry-run ConfigMap a/b: Patch "https://10.20.30.40:6443/api/v1/namespaces/a/configmaps/b?dryRun=All": dial tcp 10.20.30.40:6443: connect: connection refused`,
			`cluster prod: dry-run ConfigMap a/b: Patch "(the apiserver of cluster prod)/api/v1/namespaces/a/configmaps/b?dryRun=All": dial tcp (the apiserver of cluster prod): connect: connection refused`},
		{`Get "https://kube.edge.internal/k8s/clusters/c-42/version": dial tcp: lookup kube.edge.internal: no such host`,
			`Get "(the apiserver of cluster edge)/version": dial tcp: lookup (the apiserver of cluster edge): no such host`},
		{"dial tcp kube.edge.internal:443: i/o timeout", "dial tcp (the apiserver of cluster edge): i/o timeout"},
		{"cluster gone: kubeconfig " + missing + ": no such file or directory", "cluster gone: kubeconfig (the kubeconfig of cluster gone): no such file or directory"},
		{"open " + filepath.Join(dir, "edge.key") + ": permission denied", "open (a credential file of cluster edge): permission denied"},
		{"unable to read " + filepath.Join(dir, "prod-ca.crt"), "unable to read (a credential file of cluster prod)"},
		{"Authorization: Bearer s3cr3t-t0ken-value", "Authorization: Bearer (a credential of cluster prod)"},
		{"proxyconnect https://alice:hunter2@proxy.corp:3128 failed", "proxyconnect https://proxy.corp:3128 failed"},
		{"proxyconnect tcp: dial tcp 10.9.9.9:3128: connection refused", "proxyconnect tcp: dial tcp (the proxy of clusters edge, prod): connection refused"},
		{"render apps/web: deploy.yaml: document 1: bad indentation", "render apps/web: deploy.yaml: document 1: bad indentation"},
	} {
		if got := r.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// Clusters that share an apiserver (two contexts, two users) are named together.
func TestRedactSharedAddressNamesEveryCluster(t *testing.T) {
	dir := t.TempDir()
	a := writeKubeconfig(t, dir, "a", "https://10.0.0.9:6443", "{token: aaaaaaaaaaaa}")
	b := writeKubeconfig(t, dir, "b", "https://10.0.0.9:6443", "{token: bbbbbbbbbbbb}")
	reg, err := cluster.NewRegistry("", cluster.Target{Name: "a", Kubeconfig: a, Context: "a"}, cluster.Target{Name: "b", Kubeconfig: b, Context: "b"})
	if err != nil {
		t.Fatal(err)
	}
	got := cluster.NewRedactor(reg).Redact("dial tcp 10.0.0.9:6443: connection refused")
	if want := "dial tcp (the apiserver of clusters a, b): connection refused"; got != want || strings.Contains(got, "10.0.0.9") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Explain words a transport error on one line, as Describe does, and still unwraps to it.
func TestExplainKeepsTheCause(t *testing.T) {
	cause := &url.Error{Op: "Get", URL: "https://10.0.0.1:6443/version", Err: syscall.ECONNREFUSED}
	err := fmt.Errorf("cluster prod: apiserver https://10.0.0.1:6443 %w", cluster.Explain(cause))
	if got, want := err.Error(), "cluster prod: apiserver https://10.0.0.1:6443 is unreachable: connection refused"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Error("the cause is lost")
	}
}
