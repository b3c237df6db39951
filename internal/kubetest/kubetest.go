// Package kubetest starts real Kubernetes control planes (kube-apiserver + etcd on loopback)
// for tests, the demo and benchmarks. Kubernetes is never mocked in this project.
//
// The binaries come from hack/kube-binaries.sh, which builds them from the Go module proxy
// into a cache; KUBEBUILDER_ASSETS, when set, names that directory directly.
package kubetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/kubeplan/kubeplan/cluster"
)

// Cluster is one running control plane.
type Cluster struct {
	Name string
	// Config is an admin client configuration.
	Config *rest.Config
	// Kubeconfig is a kubeconfig file for it, with one context named Name.
	Kubeconfig string
	env        *envtest.Environment
	dir        string
}

var assets struct {
	once sync.Once
	dir  string
	err  error
}

// Assets returns the directory holding kube-apiserver, etcd and kubectl, building them if needed.
func Assets() (string, error) {
	assets.once.Do(func() {
		if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
			assets.dir = dir
			return
		}
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "..", "hack", "kube-binaries.sh")
		var stderr bytes.Buffer
		cmd := exec.Command("bash", script)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			assets.err = fmt.Errorf("build Kubernetes test binaries: %w\n%s", err, stderr.String())
			return
		}
		assets.dir = strings.TrimSpace(string(out))
	})
	return assets.dir, assets.err
}

// Start starts a control plane named name (the kubeconfig context name).
func Start(name string) (*Cluster, error) {
	dir, err := Assets()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// envtest's default /24 service range runs out of ClusterIPs at a few hundred Services.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/16")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start control plane %s: %w", name, err)
	}
	c := &Cluster{Name: name, Config: cfg, env: env}
	if c.dir, err = os.MkdirTemp("", "kubeplan-cluster-"); err != nil {
		_ = env.Stop()
		return nil, err
	}
	if err := c.writeKubeconfig(); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// writeKubeconfig writes an admin kubeconfig whose only context is the cluster's name.
func (c *Cluster) writeKubeconfig() error {
	user, err := c.env.AddUser(envtest.User{Name: "kubeplan-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("kubeconfig for %s: %w", c.Name, err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig for %s: %w", c.Name, err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return fmt.Errorf("kubeconfig for %s: %w", c.Name, err)
	}
	// envtest names its context "envtest"; it takes the cluster's name instead.
	cfg.Contexts = map[string]*clientcmdapi.Context{c.Name: cfg.Contexts[cfg.CurrentContext]}
	cfg.CurrentContext = c.Name
	c.Kubeconfig = filepath.Join(c.dir, "kubeconfig")
	return WriteKubeconfig(c.Kubeconfig, cfg)
}

// UserKubeconfig writes a kubeconfig, whose only context is the cluster's name, for a user who
// has only what RBAC grants it (the apiserver authorizes with RBAC) and returns its path.
func (c *Cluster) UserKubeconfig(user string, groups ...string) (string, error) {
	u, err := c.env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("kubeconfig for %s on %s: %w", user, c.Name, err)
	}
	raw, err := u.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("kubeconfig for %s on %s: %w", user, c.Name, err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return "", fmt.Errorf("kubeconfig for %s on %s: %w", user, c.Name, err)
	}
	cfg.Contexts = map[string]*clientcmdapi.Context{c.Name: cfg.Contexts[cfg.CurrentContext]}
	cfg.CurrentContext = c.Name
	f, err := os.CreateTemp(c.dir, "user-*.kubeconfig")
	if err != nil {
		return "", err
	}
	f.Close()
	return f.Name(), WriteKubeconfig(f.Name(), cfg)
}

// WriteKubeconfig writes the given kubeconfigs merged into one file, each cluster's entries
// renamed after its current context so that several clusters live side by side.
func WriteKubeconfig(path string, configs ...*clientcmdapi.Config) error {
	merged := clientcmdapi.NewConfig()
	for _, cfg := range configs {
		ctx := cfg.Contexts[cfg.CurrentContext]
		if ctx == nil {
			return fmt.Errorf("kubeconfig has no current context")
		}
		name := cfg.CurrentContext
		merged.Clusters[name] = cfg.Clusters[ctx.Cluster]
		merged.AuthInfos[name] = cfg.AuthInfos[ctx.AuthInfo]
		merged.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: ctx.Namespace}
		if merged.CurrentContext == "" {
			merged.CurrentContext = name
		}
	}
	return clientcmd.WriteToFile(*merged, path)
}

// KubeconfigAPI loads the cluster's kubeconfig (to merge it with others).
func (c *Cluster) KubeconfigAPI() (*clientcmdapi.Config, error) {
	return clientcmd.LoadFromFile(c.Kubeconfig)
}

// Stop stops the control plane and removes its files.
func (c *Cluster) Stop() error {
	err := c.env.Stop()
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
	return err
}

// Client connects kubeplan's cluster client to it.
func (c *Cluster) Client(ctx context.Context) (*cluster.Client, error) {
	return cluster.ConnectConfig(ctx, c.Name, c.Config, cluster.DefaultTuning())
}

// Kubectl runs the kubectl built with the control plane against it.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	dir, err := Assets()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "KUBECTL_APPLYSET=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Objects parses a multi-document YAML string into objects (test fixtures).
func Objects(docs string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			return nil, fmt.Errorf("fixture: %w", err)
		}
		out = append(out, u)
	}
	return out, nil
}

// RunWithCluster is a TestMain body: it starts a control plane named name, stores it in *c,
// runs the tests and stops it, returning the exit code.
func RunWithCluster(m interface{ Run() int }, name string, c **Cluster) int {
	cluster, err := Start(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*c = cluster
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
	return code
}
