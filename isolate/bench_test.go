package isolate

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/internal/testtree"
	"github.com/kubeplan/kubeplan/render"
)

// A small kustomization (an overlay of 20 objects) rendered in this process and in a child: the
// difference is what a child costs, in wall time and in CPU (this process's and its children's).
func BenchmarkKustomize(b *testing.B) {
	var objs strings.Builder
	for i := range 20 {
		fmt.Fprintf(&objs, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm%d}\ndata: {a: b}\n", i)
	}
	root := testtree.Write(b, map[string]string{
		"base/kustomization.yaml": "resources: [cms.yaml]\n",
		"base/cms.yaml":           objs.String(),
		"app/kustomization.yaml":  "namePrefix: shop-\nresources: [../base]\nlabels:\n- pairs: {team: shop}\n",
	})
	for _, c := range []struct {
		name   string
		render func(context.Context, string, string, render.Options) (*render.Result, error)
	}{{"in process", render.Render}, {"in a child", (&Renderer{}).Render}} {
		b.Run(c.name, func(b *testing.B) {
			before := cpu()
			for b.Loop() {
				res, err := c.render(context.Background(), root, "app", render.Options{})
				if err != nil || len(res.Objects) != 20 {
					b.Fatalf("%v", err)
				}
			}
			b.ReportMetric(float64((cpu()-before).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpu is the user and system time of this process and its waited-for children.
func cpu() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}
