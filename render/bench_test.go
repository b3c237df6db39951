package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Rendering 1,000 plain-YAML objects in ten files.
func BenchmarkRenderYAML1000(b *testing.B) {
	root := b.TempDir()
	dir := filepath.Join(root, "p")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for f := 0; f < 10; f++ {
		var s strings.Builder
		for i := 0; i < 100; i++ {
			fmt.Fprintf(&s, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d-%d\ndata:\n  a: b\n  c: d\n", f, i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.yaml", f)), []byte(s.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := Render(context.Background(), root, "p", Options{})
		if err != nil || len(res.Objects) != 1000 {
			b.Fatalf("%v %d", err, len(res.Objects))
		}
	}
}
