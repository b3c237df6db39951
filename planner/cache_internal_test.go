package planner

import (
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func answer(value string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "x"}, "data": map[string]any{"value": value}}}
}

func TestDryRunCacheBoundsTTLAndCopies(t *testing.T) {
	size := func(u *unstructured.Unstructured) int64 { b, _ := u.MarshalJSON(); return int64(len(b)) }
	k := func(b byte) cacheKey { return cacheKey{b} }
	cases := []struct {
		name   string
		limits CacheLimits
		// put stores answers 1..puts under keys 1..puts, then reads key 1 (making it recent)
		// and stores one more; kept are the keys still answered.
		kept []byte
	}{
		{name: "entries: the least recently used goes", limits: CacheLimits{Entries: 3}, kept: []byte{1, 3, 4}},
		{name: "bytes: the least recently used goes", limits: CacheLimits{Bytes: 3*size(answer("v")) + 1}, kept: []byte{1, 3, 4}},
		{name: "room for all", limits: CacheLimits{}, kept: []byte{1, 2, 3, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewDryRunCache(tc.limits)
			for i := byte(1); i <= 3; i++ {
				c.put(k(i), answer("v"), nil)
			}
			if _, hit := c.get(k(1)); !hit {
				t.Fatal("key 1 not kept")
			}
			c.put(k(4), answer("v"), nil)
			var kept []byte
			for i := byte(1); i <= 4; i++ {
				if _, hit := c.get(k(i)); hit {
					kept = append(kept, i)
				}
			}
			if string(kept) != string(tc.kept) {
				t.Errorf("kept %v, want %v", kept, tc.kept)
			}
		})
	}

	t.Run("an answer older than the TTL is asked again", func(t *testing.T) {
		now := time.Now()
		c := NewDryRunCache(CacheLimits{TTL: time.Minute})
		c.now = func() time.Time { return now }
		c.put(k(1), answer("v"), nil)
		now = now.Add(59 * time.Second)
		if _, hit := c.get(k(1)); !hit {
			t.Fatal("fresh answer not served")
		}
		now = now.Add(time.Second)
		if _, hit := c.get(k(1)); hit || c.Len() != 0 {
			t.Fatal("stale answer served or kept")
		}
	})

	t.Run("callers get copies; only successes and conflicts are kept", func(t *testing.T) {
		c := NewDryRunCache(CacheLimits{})
		c.put(k(1), answer("v"), nil)
		got, _ := c.get(k(1))
		got.planned.Object["data"] = "changed"
		if again, _ := c.get(k(1)); again.planned.Object["data"].(map[string]any)["value"] != "v" {
			t.Error("a caller's change reached the cache")
		}
		gr := schema.GroupResource{Resource: "configmaps"}
		c.put(k(2), nil, apierrors.NewConflict(gr, "x", errors.New("conflict with \"other\"")))
		if a, hit := c.get(k(2)); !hit || !apierrors.IsConflict(a.err) {
			t.Errorf("conflict not kept: hit %v, err %v", hit, a.err)
		}
		c.put(k(3), nil, apierrors.NewForbidden(gr, "x", errors.New("no")))
		c.put(k(4), nil, errors.New("connection refused"))
		for _, key := range []cacheKey{k(3), k(4)} {
			if _, hit := c.get(key); hit {
				t.Error("an answer that does not depend on the object alone was kept")
			}
		}
	})
}
