package planner

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
				c.put(k(i), answer("v"))
			}
			if _, hit := c.get(k(1)); !hit {
				t.Fatal("key 1 not kept")
			}
			c.put(k(4), answer("v"))
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
		c.put(k(1), answer("v"))
		now = now.Add(59 * time.Second)
		if _, hit := c.get(k(1)); !hit {
			t.Fatal("fresh answer not served")
		}
		now = now.Add(time.Second)
		if _, hit := c.get(k(1)); hit || c.Len() != 0 {
			t.Fatal("stale answer served or kept")
		}
	})

	t.Run("callers get copies", func(t *testing.T) {
		c := NewDryRunCache(CacheLimits{})
		c.put(k(1), answer("v"))
		got, _ := c.get(k(1))
		got.Object["data"] = "changed"
		if again, _ := c.get(k(1)); again.Object["data"].(map[string]any)["value"] != "v" {
			t.Error("a caller's change reached the cache")
		}
	})
}
