package cluster

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Redactor takes out of a message what the operator's configuration says about reaching each
// cluster — apiserver URLs and hosts, kubeconfig and credential file paths, inline tokens —
// and names the cluster instead. Errors from client-go carry these ("Get
// \"https://10.0.3.7:6443/api\": dial tcp 10.0.3.7:6443: …", "open /etc/kubeplan/prod.yaml:
// …"); text bound for a pull request, a commit status or the store goes through Redact, while
// logs, read by the operator, keep them.
type Redactor struct {
	reg *Registry

	mu       sync.Mutex
	replacer *strings.Replacer
	complete bool // every target's configuration could be read
}

// NewRedactor returns a redactor for the registry's clusters. Their configurations are read
// on first use, and again while one of them cannot be read.
func NewRedactor(reg *Registry) *Redactor { return &Redactor{reg: reg} }

// userinfo matches the credentials of any URL ("https://user:token@host").
var userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/\s"'@]+@`)

// Redact returns s with every known apiserver address and kubeconfig or credential path
// replaced by the cluster's name, and credentials in URLs removed.
func (r *Redactor) Redact(s string) string {
	if r == nil || s == "" {
		return s
	}
	return userinfo.ReplaceAllString(r.load().Replace(s), "$1")
}

func (r *Redactor) load() *strings.Replacer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replacer == nil || !r.complete {
		r.replacer, r.complete = r.build()
	}
	return r.replacer
}

// needles collects what to replace, each with the clusters it belongs to.
type needles map[string]map[string]bool

func (n needles) add(what, cluster string) {
	if what == "" {
		return
	}
	if n[what] == nil {
		n[what] = map[string]bool{}
	}
	n[what][cluster] = true
}

// build reads every target's configuration (never contacting a cluster) and makes the
// replacer. complete is false when a configuration could not be read: its file path is
// still replaced, its apiserver is not known yet.
func (r *Redactor) build() (*strings.Replacer, bool) {
	type kind int
	const (
		apiserver kind = iota
		kubeconfig
		credentialFile
		credential
		proxy
	)
	found := map[kind]needles{apiserver: {}, kubeconfig: {}, credentialFile: {}, credential: {}, proxy: {}}
	hostsOnly := needles{} // bare host names, replaced only when they name one cluster
	complete := true
	for _, name := range r.reg.Names() {
		t := r.reg.targets[name]
		if t.Kubeconfig != "" {
			found[kubeconfig].add(t.Kubeconfig, name)
			if abs, err := filepath.Abs(t.Kubeconfig); err == nil {
				found[kubeconfig].add(abs, name)
			}
		} else if !t.InCluster {
			for _, p := range clientcmd.NewDefaultClientConfigLoadingRules().GetLoadingPrecedence() {
				found[kubeconfig].add(p, name)
			}
		}
		conn, err := connection(t)
		if err != nil {
			complete = false
			continue
		}
		for _, p := range conn.files {
			if strings.ContainsRune(p, filepath.Separator) { // a bare program name ("aws") is a word
				found[credentialFile].add(p, name)
			}
		}
		for _, c := range conn.secrets {
			if len(c) >= 8 { // short strings would replace ordinary words
				found[credential].add(c, name)
			}
		}
		for _, p := range conn.proxies {
			if u, err := url.Parse(p); err == nil && u.Host != "" {
				found[proxy].add(u.Scheme+"://"+u.Host, name)
				found[proxy].add(u.Host, name)
			}
		}
		u, err := url.Parse(conn.host)
		found[apiserver].add(strings.TrimSuffix(conn.host, "/"), name)
		if err != nil || u.Host == "" {
			continue
		}
		found[apiserver].add(u.Scheme+"://"+u.Host, name)
		hostPort := u.Host
		if u.Port() == "" {
			port := "443"
			if u.Scheme == "http" {
				port = "80"
			}
			hostPort = net.JoinHostPort(u.Hostname(), port)
			found[apiserver].add(u.Scheme+"://"+hostPort, name)
		}
		found[apiserver].add(hostPort, name)
		if net.ParseIP(u.Hostname()) == nil && u.Hostname() != "localhost" {
			hostsOnly.add(u.Hostname(), name) // DNS errors name the host alone
		}
	}
	for host, clusters := range hostsOnly {
		if len(clusters) == 1 {
			for c := range clusters {
				found[apiserver].add(host, c)
			}
		}
	}

	var pairs []string
	seen := map[string]bool{}
	for _, k := range []kind{credential, apiserver, proxy, kubeconfig, credentialFile} {
		words := map[kind]string{apiserver: "the apiserver of ", proxy: "the proxy of ", kubeconfig: "the kubeconfig of ",
			credentialFile: "a credential file of ", credential: "a credential of "}[k]
		for needle, clusters := range found[k] {
			if seen[needle] {
				continue
			}
			seen[needle] = true
			with := "(" + words + clusterNames(clusters) + ")"
			if k == apiserver {
				// "apiserver https://…" already says what it is: the cluster is named before.
				pairs = append(pairs, "apiserver "+needle, "apiserver")
			}
			pairs = append(pairs, needle, with)
		}
	}
	// At each position the first listed match wins: longest first, so a URL goes as a whole
	// rather than leaving its scheme behind a replaced host.
	type pair struct{ old, new string }
	ps := make([]pair, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		ps = append(ps, pair{pairs[i], pairs[i+1]})
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if len(ps[i].old) != len(ps[j].old) {
			return len(ps[i].old) > len(ps[j].old)
		}
		return ps[i].old < ps[j].old
	})
	args := make([]string, 0, len(pairs))
	for _, p := range ps {
		args = append(args, p.old, p.new)
	}
	return strings.NewReplacer(args...), complete
}

// reach is what a target's configuration says about reaching its cluster.
type reach struct {
	host    string
	proxies []string
	files   []string // credential files and programs
	secrets []string // inline credentials
}

// connection reads a target's configuration as written, without the checks a client needs
// (a kubeconfig whose CA file is missing still names its apiserver).
func connection(t Target) (reach, error) {
	if t.InCluster {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return reach{}, err
		}
		return reach{host: cfg.Host, files: []string{cfg.TLSClientConfig.CAFile, cfg.BearerTokenFile}, secrets: []string{cfg.BearerToken}}, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = t.Kubeconfig
	raw, err := rules.Load()
	if err != nil {
		return reach{}, err
	}
	name := t.Context
	if name == "" {
		name = raw.CurrentContext
	}
	ctx := raw.Contexts[name]
	if ctx == nil {
		return reach{}, fmt.Errorf("context %q not found", name)
	}
	var out reach
	if c := raw.Clusters[ctx.Cluster]; c != nil {
		out.host = c.Server
		out.proxies = append(out.proxies, c.ProxyURL)
		out.files = append(out.files, c.CertificateAuthority)
	}
	if a := raw.AuthInfos[ctx.AuthInfo]; a != nil {
		out.files = append(out.files, a.ClientCertificate, a.ClientKey, a.TokenFile)
		out.secrets = append(out.secrets, a.Token, a.Password)
		if a.Exec != nil {
			out.files = append(out.files, a.Exec.Command)
		}
	}
	return out, nil
}

// clusterNames is "cluster prod" or "clusters prod, staging".
func clusterNames(set map[string]bool) string {
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 1 {
		return "cluster " + names[0]
	}
	return "clusters " + strings.Join(names, ", ")
}
