package history

import (
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/plan"
)

// chain links entries as a store does.
func chain(entries ...Entry) []Entry {
	prev := ""
	for i := range entries {
		entries[i].Seq = int64(i + 1)
		entries[i].PrevHash = prev
		entries[i] = entries[i].Canonical()
		entries[i].Hash = entries[i].ComputeHash()
		prev = entries[i].Hash
	}
	return entries
}

func sample() []Entry {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	api := plan.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "web", Name: "api"}
	return chain(
		Entry{At: at, Kind: Plan, Forge: "github", Repo: "acme/shop", Number: 7, Project: "web", Cluster: "prod", Actor: "alice", State: "planned",
			Objects: []Object{{Object: api, Outcome: "update", Diff: "+replicas: 3"}}},
		Entry{At: at.Add(time.Minute), Kind: Apply, Forge: "github", Repo: "acme/shop", Number: 7, Project: "web", Cluster: "prod", Actor: "alice",
			Approvals: []Approval{{Reviewer: "bob", SHA: "c0ffee"}}, State: "succeeded", Objects: []Object{{Object: api, Outcome: "configured"}}},
		Entry{At: at.Add(2 * time.Minute), Kind: DriftCheck, Forge: "github", Repo: "acme/shop", Project: "web", Cluster: "prod", State: "clean"},
	)
}

// The hash covers every field but itself: the same content hashes the same whatever the
// time's zone, and any change to content, place or link changes it.
func TestHashCoversEveryFieldButItself(t *testing.T) {
	e := sample()[1]
	same := e
	same.At = e.At.In(time.FixedZone("CET", 3600))
	same.Hash = "anything"
	if same.ComputeHash() != e.Hash {
		t.Fatal("the same entry in another time zone (or with another Hash) hashes differently")
	}
	for name, change := range map[string]func(*Entry){
		"seq":      func(e *Entry) { e.Seq++ },
		"prevHash": func(e *Entry) { e.PrevHash = "x" },
		"at":       func(e *Entry) { e.At = e.At.Add(time.Millisecond) },
		"actor":    func(e *Entry) { e.Actor = "mallory" },
		"approval": func(e *Entry) { e.Approvals[0].SHA = "deadbeef" },
		"outcome":  func(e *Entry) { e.Objects[0].Outcome = "failed" },
		"number":   func(e *Entry) { e.Number = 8 },
	} {
		c := e
		c.Approvals = append([]Approval(nil), e.Approvals...)
		c.Objects = append([]Object(nil), e.Objects...)
		change(&c)
		if c.ComputeHash() == e.Hash {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}

// The verifier names the first entry that does not fit, without a database.
func TestVerifierNamesTheFirstEntryThatDoesNotFit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries func([]Entry) []Entry
		head    int64
		want    *Break
	}{
		{"a whole chain holds", func(c []Entry) []Entry { return c }, 3, nil},
		{"an edited entry", func(c []Entry) []Entry { c[1].Actor = "mallory"; return c }, 3, &Break{Seq: 2, Reason: Changed}},
		{"an entry rewritten with a fresh hash breaks the next link", func(c []Entry) []Entry {
			c[1].Actor = "mallory"
			c[1].Hash = c[1].ComputeHash()
			return c
		}, 3, &Break{Seq: 3, Reason: Unlinked}},
		{"a deleted entry", func(c []Entry) []Entry { return append(c[:1], c[2]) }, 3, &Break{Seq: 2, Reason: Missing}},
		{"the last entry deleted", func(c []Entry) []Entry { return c[:2] }, 3, &Break{Seq: 3, Reason: Missing}},
		{"entries reordered", func(c []Entry) []Entry { return []Entry{c[0], c[2], c[1]} }, 3, &Break{Seq: 2, Reason: Missing}},
		{"an entry beyond the head", func(c []Entry) []Entry { return c }, 2, &Break{Seq: 3, Reason: Unlinked}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVerifier(1, "")
			var got *Break
			for _, e := range tc.entries(sample()) {
				if got = v.Check(e); got != nil {
					break
				}
			}
			if got == nil {
				got = v.End(tc.head, sample()[tc.head-1].Hash)
			}
			switch {
			case tc.want == nil && got != nil:
				t.Fatalf("the chain does not hold: %v", got)
			case tc.want != nil && (got == nil || got.Seq != tc.want.Seq || got.Reason != tc.want.Reason):
				t.Fatalf("found %v, want entry %d: %s", got, tc.want.Seq, tc.want.Reason)
			}
		})
	}
}

// After retention pruned the start, the walk starts from the last pruned entry's hash.
func TestVerifierStartsFromThePrunedAnchor(t *testing.T) {
	c := sample()
	v := NewVerifier(2, c[0].Hash)
	for _, e := range c[1:] {
		if b := v.Check(e); b != nil {
			t.Fatal(b)
		}
	}
	if b := v.End(3, c[2].Hash); b != nil || v.Checked != 2 {
		t.Fatalf("End = %v, checked %d", b, v.Checked)
	}
	if b := NewVerifier(2, "forged").Check(c[1]); b == nil || b.Reason != Unlinked {
		t.Fatalf("a kept entry that does not follow the anchor: %v", b)
	}
}
