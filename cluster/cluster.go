// Package cluster connects to the Kubernetes clusters kubeplan plans against: a registry of
// names to kubeconfig files and contexts, clients tuned for many parallel requests, and the
// reading of what an apiserver's errors mean (unreachable, missing namespace, field conflicts).
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// Target says how to reach one cluster.
type Target struct {
	Name string `json:"name"`
	// Kubeconfig is a kubeconfig file; empty means the default loading rules ($KUBECONFIG, ~/.kube/config).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context in that kubeconfig; empty means its current context.
	Context string `json:"context,omitempty"`
	// InCluster uses the pod's service account.
	InCluster bool `json:"inCluster,omitempty"`
}

// Registry maps cluster names to targets.
type Registry struct {
	targets map[string]Target
	// Default is the cluster used when a project names none.
	Default string
}

// NewRegistry builds a registry; the first target is the default unless one is named.
func NewRegistry(defaultName string, targets ...Target) (*Registry, error) {
	r := &Registry{targets: map[string]Target{}, Default: defaultName}
	for _, t := range targets {
		if t.Name == "" {
			return nil, errors.New("cluster registry: a cluster has no name")
		}
		if _, dup := r.targets[t.Name]; dup {
			return nil, fmt.Errorf("cluster registry: cluster %q is listed twice", t.Name)
		}
		r.targets[t.Name] = t
		if r.Default == "" {
			r.Default = t.Name
		}
	}
	if r.Default != "" {
		if _, ok := r.targets[r.Default]; !ok {
			return nil, fmt.Errorf("cluster registry: default cluster %q is not listed", r.Default)
		}
	}
	return r, nil
}

// FromKubeconfig makes a registry with one cluster per context of a kubeconfig file (empty:
// the default loading rules), named after the context; the current context is the default.
func FromKubeconfig(kubeconfig string) (*Registry, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	var targets []Target
	for name := range cfg.Contexts {
		targets = append(targets, Target{Name: name, Kubeconfig: kubeconfig, Context: name})
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].Name < targets[j].Name })
	return NewRegistry(cfg.CurrentContext, targets...)
}

// Lookup returns the named target; "" is the default cluster.
func (r *Registry) Lookup(name string) (Target, error) {
	if name == "" {
		name = r.Default
	}
	if name == "" {
		return Target{}, errors.New("no cluster given and no default cluster configured")
	}
	t, ok := r.targets[name]
	if !ok {
		return Target{}, fmt.Errorf("unknown cluster %q (known: %s)", name, strings.Join(r.Names(), ", "))
	}
	return t, nil
}

// Names lists the registered clusters, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.targets))
	for n := range r.targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FieldManager is the server-side apply field manager kubeplan plans and applies as: the
// planner's dry-runs and the applier's writes must name the same one, or a plan would show
// kubeplan's own fields as taken over from another manager.
const FieldManager = "kubeplan"

// Client is a connection to one cluster.
type Client struct {
	Name    string
	Config  *rest.Config
	Dynamic dynamic.Interface
	Mapper  meta.ResettableRESTMapper
	Version string // apiserver git version, e.g. v1.37.2
}

// Tuning sets client-side limits. client-go's default of 5 QPS would dominate a plan of
// hundreds of objects; parallelism is bounded by the planner's worker pool instead.
type Tuning struct {
	QPS     float32
	Burst   int
	Timeout time.Duration
}

// DefaultTuning matches a worker pool of a few dozen requests in flight.
func DefaultTuning() Tuning { return Tuning{QPS: 1000, Burst: 2000, Timeout: 30 * time.Second} }

// RESTConfig loads the client configuration for a target without contacting the cluster.
func RESTConfig(t Target) (*rest.Config, error) {
	if t.InCluster {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("cluster %s: in-cluster config: %w", t.Name, err)
		}
		return cfg, nil
	}
	if t.Kubeconfig != "" {
		if _, err := os.Stat(t.Kubeconfig); err != nil {
			return nil, fmt.Errorf("cluster %s: kubeconfig %s: %w", t.Name, t.Kubeconfig, errors.Unwrap(err))
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = t.Kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: t.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: invalid kubeconfig: %s", t.Name, firstLine(err.Error()))
	}
	return cfg, nil
}

// Connect builds clients for a target and checks that its apiserver answers.
func Connect(ctx context.Context, t Target, tune Tuning) (*Client, error) {
	cfg, err := RESTConfig(t)
	if err != nil {
		return nil, err
	}
	return ConnectConfig(ctx, t.Name, cfg, tune)
}

// ConnectConfig is Connect for an already loaded client configuration.
func ConnectConfig(ctx context.Context, name string, cfg *rest.Config, tune Tuning) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst, cfg.Timeout = tune.QPS, tune.Burst, tune.Timeout
	cfg.UserAgent = "kubeplan"
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	version, err := serverVersion(ctx, disco)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: apiserver %s %w", name, cfg.Host, Explain(err))
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))
	return &Client{Name: name, Config: cfg, Dynamic: dyn, Mapper: mapper, Version: version}, nil
}

func serverVersion(ctx context.Context, disco *discovery.DiscoveryClient) (string, error) {
	body, err := disco.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("unexpected /version answer: %w", err)
	}
	return v.GitVersion, nil
}

// Describe turns a transport error into the one line a user needs ("is unreachable:
// connection refused"), without the stack of wrapped client errors.
func Describe(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "is unreachable: connection refused"
	case errors.As(err, &dnsErr):
		return "is unreachable: unknown host " + dnsErr.Name
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "is unreachable: timed out"
	}
	msg := firstLine(err.Error())
	switch {
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate"):
		return "refused TLS: " + msg
	case strings.Contains(msg, "Unauthorized"):
		return "rejected the credentials (401 Unauthorized)"
	}
	return "failed: " + msg
}

// Explain is err as Describe words it, still unwrapping to err.
func Explain(err error) error { return explained{err} }

type explained struct{ err error }

func (e explained) Error() string { return Describe(e.err) }
func (e explained) Unwrap() error { return e.err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Pool keeps one connection per registered cluster, made on first use. A failed connection is
// not kept: the next use tries again.
type Pool struct {
	reg     *Registry
	tune    Tuning
	redact  *Redactor
	mu      sync.Mutex
	clients map[string]*Client
}

// NewPool returns a pool over a registry.
func NewPool(reg *Registry, tune Tuning) *Pool {
	return &Pool{reg: reg, tune: tune, redact: NewRedactor(reg), clients: map[string]*Client{}}
}

// Registry is the pool's registry.
func (p *Pool) Registry() *Registry { return p.reg }

// Redact takes the registered clusters' apiserver addresses, kubeconfig and credential paths
// and credentials out of s, naming the clusters instead (see Redactor).
func (p *Pool) Redact(s string) string { return p.redact.Redact(s) }

// Get returns the client for a cluster name ("" is the default cluster), connecting if needed.
// Its RESTMapper is reset so kinds added since the last use (new CRDs) are seen.
func (p *Pool) Get(ctx context.Context, name string) (*Client, error) {
	t, err := p.reg.Lookup(name)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	c := p.clients[t.Name]
	p.mu.Unlock()
	if c != nil {
		c.Mapper.Reset()
		return c, nil
	}
	c, err = Connect(ctx, t, p.tune)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.clients[t.Name] = c
	p.mu.Unlock()
	return c, nil
}
