package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// output counts what a render produces against Limits.MaxOutputBytes.
type output struct {
	max, n int64
	dir    string
}

func newOutput(dir string, l Limits) *output { return &output{max: l.MaxOutputBytes, dir: dir} }

// add counts n more bytes produced from file (empty: the project as a whole).
func (o *output) add(file string, n int64) error {
	o.n += n
	if o.n > o.max {
		reason := fmt.Sprintf("renders more than %s of manifests, the limit", mib(o.max))
		if file != "" && file != o.dir {
			reason += " (reached at " + file + ")"
		}
		return &Error{File: o.dir, Reason: reason}
	}
	return nil
}

func (o *output) left() int64 { return o.max - o.n }

// mib writes a size for people: 64 MiB, 1.2 MiB, 300 KiB, 512 bytes.
func mib(n int64) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MiB"
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// YAML aliases are the one way a YAML document grows when decoded: `*a` stands for a whole
// copy of what `&a` names, and go-yaml's own guard counts decoded nodes, not bytes, so a 1 MiB
// document whose aliases each name a long string passes it and decodes to gigabytes. Before a
// document is decoded, its expansion is measured on its node tree (which holds each alias
// once): it may grow to aliasFactor times its own size, or to aliasFloor, whichever is more.
const (
	aliasFactor = 4
	aliasFloor  = 1 << 20
	// nodeBytes is what a node costs beyond its text once decoded to JSON (quotes, commas,
	// brackets), so that many small nodes count too.
	nodeBytes = 4
	// saturated stops counting: no bound is anywhere near it.
	saturated = int64(1) << 60
)

// mayHaveAliases is a cheap test that lets documents without anchors skip the measure.
func mayHaveAliases(doc []byte) bool {
	return bytes.IndexByte(doc, '&') >= 0 && bytes.IndexByte(doc, '*') >= 0
}

// checkAliases refuses a YAML document (or stream) whose aliases expand it beyond its bound or
// beyond left bytes; its error is the reason, for the caller to name the file. It returns the
// expanded size it measured (0 when the document has no aliases).
func checkAliases(doc []byte, left int64) (int64, error) {
	if !mayHaveAliases(doc) {
		return 0, nil
	}
	dec := yamlv3.NewDecoder(bytes.NewReader(doc))
	var total int64
	for {
		var root yamlv3.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errUncheckable, err)
		}
		e := expansion{size: map[*yamlv3.Node]int64{}, busy: map[*yamlv3.Node]bool{}}
		n, err := e.measure(&root)
		if err != nil {
			return 0, err
		}
		total = satAdd(total, n)
	}
	bound := max(int64(aliasFactor)*int64(len(doc)), aliasFloor)
	switch {
	case total > bound:
		return total, fmt.Errorf("its YAML aliases expand it to more than %s (%d times its size or %s, whichever is more); kubeplan refuses documents that expand like a YAML bomb",
			mib(bound), aliasFactor, mib(aliasFloor))
	case total > left:
		return total, fmt.Errorf("its YAML aliases expand it to more than the %s of manifests a render may produce", mib(left))
	}
	return total, nil
}

// errUncheckable: the document does not parse here, so its aliases were not measured.
var errUncheckable = errors.New("its YAML aliases cannot be checked")

// expansion measures the decoded size of a node tree, each alias counted as the node it names.
type expansion struct {
	size map[*yamlv3.Node]int64
	busy map[*yamlv3.Node]bool
}

func (e *expansion) measure(n *yamlv3.Node) (int64, error) {
	if n == nil {
		return 0, nil
	}
	if s, ok := e.size[n]; ok {
		return s, nil
	}
	if e.busy[n] {
		return 0, errors.New("a YAML alias refers to the node that contains it")
	}
	e.busy[n] = true
	defer delete(e.busy, n)
	var s int64
	switch n.Kind {
	case yamlv3.AliasNode:
		a, err := e.measure(n.Alias)
		if err != nil {
			return 0, err
		}
		s = a
	case yamlv3.ScalarNode:
		s = int64(len(n.Value)) + nodeBytes
	default: // document, mapping, sequence
		s = nodeBytes
		for _, c := range n.Content {
			cs, err := e.measure(c)
			if err != nil {
				return 0, err
			}
			s = satAdd(s, cs)
		}
	}
	e.size[n] = s
	return s, nil
}

func satAdd(a, b int64) int64 {
	if a+b > saturated || a+b < 0 {
		return saturated
	}
	return a + b
}
