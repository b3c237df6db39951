package history

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// hashDomain prefixes what is hashed, so an entry's hash can never be mistaken for the hash
// of anything else, and a future encoding can say so.
const hashDomain = "kubeplan-history-v1\n"

// Canonical returns the entry as it is hashed and stored: At in UTC to the millisecond (what
// the store keeps), and every string as it reads back from JSON (invalid UTF-8, which an
// attacker's manifest may hold, becomes U+FFFD), so that an entry read back hashes as it did
// when written. Fields added to Entry later must be omitempty, or the hashes of entries
// written before them would change.
func (e Entry) Canonical() Entry {
	e.At = e.At.UTC().Truncate(time.Millisecond)
	body, err := json.Marshal(e)
	if err != nil {
		// An Entry is plain strings, numbers and times: it always encodes.
		panic(fmt.Sprintf("encode history entry %d: %v", e.Seq, err))
	}
	var out Entry
	if err := json.Unmarshal(body, &out); err != nil {
		panic(fmt.Sprintf("decode history entry %d: %v", e.Seq, err))
	}
	return out
}

// ComputeHash is the hash an entry must carry: sha256 over the canonical JSON encoding (fields
// in declaration order) of every field but Hash, Seq and PrevHash included, so an entry cannot
// be changed, moved or cut out of its chain without the hashes saying so.
func (e Entry) ComputeHash() string {
	e = e.Canonical()
	e.Hash = ""
	body, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("encode history entry %d: %v", e.Seq, err))
	}
	sum := sha256.Sum256(append([]byte(hashDomain), body...))
	return hex.EncodeToString(sum[:])
}

// Reason says why an entry does not fit the chain.
type Reason string

const (
	// Changed: the entry's content is not what its hash covers (edited after it was written).
	Changed Reason = "content changed"
	// Unlinked: the entry's PrevHash is not the hash of the entry before it (the one before
	// was rewritten, or entries were reordered or replaced).
	Unlinked Reason = "link to previous broken"
	// Missing: an entry that was written is not there (deleted).
	Missing Reason = "entry missing"
)

// Break is the first place a chain does not hold.
type Break struct {
	Seq    int64
	Reason Reason
	// Detail says what exactly did not match.
	Detail string
}

func (b *Break) Error() string {
	return fmt.Sprintf("history entry %d: %s: %s", b.Seq, b.Reason, b.Detail)
}

// Verifier walks a chain in Seq order and finds the first entry that does not fit. Stores
// feed it their entries; it needs no database.
type Verifier struct {
	next int64
	prev string
	// Checked counts the entries that fit.
	Checked int
}

// NewVerifier starts a walk at entry first (1 for a whole chain), whose PrevHash must be
// prevHash ("" for a whole chain; the last pruned entry's hash after retention pruned the
// start).
func NewVerifier(first int64, prevHash string) *Verifier {
	return &Verifier{next: first, prev: prevHash}
}

// Check checks the next entry present, as stored.
func (v *Verifier) Check(e Entry) *Break {
	switch {
	case e.Seq > v.next:
		return &Break{Seq: v.next, Reason: Missing, Detail: fmt.Sprintf("the next entry present is %d", e.Seq)}
	case e.Seq < v.next:
		return &Break{Seq: e.Seq, Reason: Unlinked, Detail: fmt.Sprintf("entry %d comes where %d belongs", e.Seq, v.next)}
	case e.ComputeHash() != e.Hash:
		return &Break{Seq: e.Seq, Reason: Changed, Detail: "its hash does not cover its content"}
	case e.PrevHash != v.prev:
		return &Break{Seq: e.Seq, Reason: Unlinked, Detail: fmt.Sprintf("it follows hash %s, but the entry before has %s", short(e.PrevHash), short(v.prev))}
	}
	v.next++
	v.prev = e.Hash
	v.Checked++
	return nil
}

// End checks the walk against the chain's head as the store recorded it at the last append:
// entries deleted from the end, or the last entry replaced, show here.
func (v *Verifier) End(headSeq int64, headHash string) *Break {
	switch {
	case headSeq >= v.next:
		return &Break{Seq: v.next, Reason: Missing, Detail: fmt.Sprintf("the chain's head is entry %d", headSeq)}
	case headSeq == v.next-1 && headHash != v.prev:
		return &Break{Seq: headSeq, Reason: Changed, Detail: fmt.Sprintf("the chain's head has hash %s, the entry %s", short(headHash), short(v.prev))}
	case headSeq < v.next-1:
		return &Break{Seq: headSeq + 1, Reason: Unlinked, Detail: fmt.Sprintf("the chain's head is entry %d, yet the entry is there", headSeq)}
	}
	return nil
}

func short(h string) string {
	if h == "" {
		return `""`
	}
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
