package planner

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/cluster"
)

// Most plans repeat (the next push of a pull request, /apply's fresh plan, every drift check),
// and most of their objects have not changed since: the apiserver would answer the same
// dry-run again. DryRunCache keeps those answers, keyed by everything the answer depends on
// that kubeplan can see, so that a re-plan of unchanged objects sends only the live reads.
//
// The key is a SHA-256 over: the apiserver (cluster name, URL, version, the user it
// authenticates as or impersonates, a hash of the credentials); the resource, namespace and
// name; the live object's UID and resourceVersion; for a custom resource the resourceVersion
// of its CRD (schema, defaults, conversion); the object as sent, after namespace defaulting,
// the inventory label and a Secret's blinding; the field manager. Every dry-run is forced
// (the takeovers are read from its managedFields), so force is not part of the key. A live edit, a
// changed manifest, a recreated object or an edited CRD is a miss.
//
// What the key cannot see: admission that changes without the object changing (a new or
// edited webhook configuration or admission policy, a policy's parameters, a webhook server
// that answers otherwise, namespace labels a webhook selects on) and aggregated APIs. Entries
// therefore live at most TTL. Only successes are kept: a refusal is asked again each time. Creates are never cached: with no live object there is no resourceVersion
// to tie the answer to, and the answer depends on the namespace, quotas and names elsewhere.

// CacheLimits bound a DryRunCache; zero fields take the defaults.
type CacheLimits struct {
	// Entries is the most answers kept (default 20,000).
	Entries int
	// Bytes bounds the answers kept, counted as their JSON size (default 64 MiB).
	Bytes int64
	// TTL is how long an answer is served at most (default 1 hour: longer than the default
	// drift interval of 30 minutes, so that scheduled checks hit).
	TTL time.Duration
}

// DryRunCache keeps server-side apply dry-run answers, least recently used evicted first. It
// is safe for concurrent use; share one between planners of one process.
type DryRunCache struct {
	limits CacheLimits
	now    func() time.Time

	mu           sync.Mutex
	order        *list.List // of *cacheEntry, most recently used first
	entries      map[cacheKey]*list.Element
	bytes        int64
	hits, misses uint64
}

type cacheKey [sha256.Size]byte

type cacheEntry struct {
	key    cacheKey
	stored time.Time
	// answer is the planned object's JSON.
	answer []byte
}

// NewDryRunCache returns an empty cache.
func NewDryRunCache(l CacheLimits) *DryRunCache {
	if l.Entries <= 0 {
		l.Entries = 20_000
	}
	if l.Bytes <= 0 {
		l.Bytes = 64 << 20
	}
	if l.TTL <= 0 {
		l.TTL = time.Hour
	}
	return &DryRunCache{limits: l, now: time.Now, order: list.New(), entries: map[cacheKey]*list.Element{}}
}

// Counts are the lookups answered from the cache (hits) and those sent to the apiserver
// (misses) since the cache was made. Creates and uncacheable objects are not looked up.
func (c *DryRunCache) Counts() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// Len is the number of answers held.
func (c *DryRunCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// get returns the stored answer for key.
func (c *DryRunCache) get(key cacheKey) (*unstructured.Unstructured, bool) {
	c.mu.Lock()
	el, ok := c.entries[key]
	if ok && c.now().Sub(el.Value.(*cacheEntry).stored) >= c.limits.TTL {
		c.remove(el)
		ok = false
	}
	if !ok {
		c.misses++
		c.mu.Unlock()
		return nil, false
	}
	c.hits++
	c.order.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	c.mu.Unlock()
	// Decoding makes a fresh copy: callers may change what they get.
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(e.answer); err != nil {
		return nil, false
	}
	return u, true
}

// put stores a successful dry-run's answer.
func (c *DryRunCache) put(key cacheKey, planned *unstructured.Unstructured) {
	answer, err := planned.MarshalJSON()
	if err != nil {
		return
	}
	size := int64(len(answer))
	if size > c.limits.Bytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, stored: c.now(), answer: answer})
	c.bytes += size
	for c.order.Len() > c.limits.Entries || c.bytes > c.limits.Bytes {
		c.remove(c.order.Back())
	}
}

// remove drops an entry; c.mu is held.
func (c *DryRunCache) remove(el *list.Element) {
	e := c.order.Remove(el).(*cacheEntry)
	delete(c.entries, e.key)
	c.bytes -= int64(len(e.answer))
}

// keyer builds the cache keys of one plan's dry-runs.
type keyer struct {
	apiserver []byte
	// crds maps a CRD's name (plural.group) to its resourceVersion; nil when the CRDs could
	// not be read, and then no custom resource is cached.
	crds map[string]string
}

// apiserverIdentity names who answers a dry-run: the cluster, its URL and version, and who
// kubeplan is there (credentials enter only through a hash).
func apiserverIdentity(c *cluster.Client) []byte {
	h := sha256.New()
	cfg := c.Config
	for _, s := range []string{c.Name, cfg.Host, cfg.APIPath, c.Version, cfg.Username, cfg.BearerToken, cfg.BearerTokenFile,
		string(cfg.CertData), cfg.CertFile, cfg.Impersonate.UserName, cfg.Impersonate.UID, fmt.Sprint(cfg.Impersonate.Groups)} {
		writeField(h, []byte(s))
	}
	return h.Sum(nil)
}

// key is the cache key of one dry-run; ok is false when the answer must not be cached.
func (k *keyer) key(d *desired, live, sent *unstructured.Unstructured) (cacheKey, bool) {
	if live == nil {
		return cacheKey{}, false
	}
	gvr := d.Mapping.Resource
	crdVersion := ""
	if isCustomCandidate(gvr.Group) {
		if k.crds == nil {
			return cacheKey{}, false
		}
		crdVersion = k.crds[gvr.Resource+"."+gvr.Group] // "" for a built-in or aggregated API
	}
	body, err := json.Marshal(sent.Object) // map keys sorted: the same object, the same bytes
	if err != nil {
		return cacheKey{}, false
	}
	h := sha256.New()
	for _, s := range []string{string(k.apiserver), gvr.String(), sent.GetNamespace(), sent.GetName(),
		string(live.GetUID()), live.GetResourceVersion(), crdVersion, cluster.FieldManager} {
		writeField(h, []byte(s))
	}
	writeField(h, body)
	var out cacheKey
	h.Sum(out[:0])
	return out, true
}

// isCustomCandidate: a CRD's group always has a dot; built-in groups without one (apps,
// batch, policy, the core group) never come from a CRD.
func isCustomCandidate(group string) bool { return strings.Contains(group, ".") }

// writeField writes a length-prefixed field, so that fields cannot run into each other.
func writeField(h interface{ Write([]byte) (int, error) }, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	_, _ = h.Write(n[:])
	_, _ = h.Write(b)
}
