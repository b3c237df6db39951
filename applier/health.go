package applier

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kubeplan/kubeplan/cluster"
)

// failedPolls is how many polls in a row an object must be Failed for the wait to give up on it.
const failedPolls = 2

// waitHealthy polls the applied objects with kstatus until all are Current, one stays Failed,
// or timeout passes (timedOut). The first round uses what the apply returned.
func (a *Applier) waitHealthy(ctx context.Context, c *cluster.Client, items []*item, timeout time.Duration) (timedOut bool, err error) {
	var targets []*item
	for _, it := range items {
		if it.applied() {
			it.res.Health, it.res.HealthMessage = status.UnknownStatus.String(), "not checked yet"
			targets = append(targets, it)
		}
	}
	if len(targets) == 0 {
		return false, nil
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	failedInARow := make([]int, len(targets))
	for round := 0; ; round++ {
		g, gctx := errgroup.WithContext(hctx)
		g.SetLimit(a.opts.Workers)
		for _, it := range targets {
			if it.res.Health == status.CurrentStatus.String() {
				continue // once Current, an object is not polled again
			}
			if round == 0 {
				setHealth(it, it.live)
				continue
			}
			g.Go(func() error {
				u, err := c.Dynamic.Resource(it.Mapping.Resource).Namespace(it.Ref.Namespace).Get(gctx, it.Ref.Name, metav1.GetOptions{})
				switch {
				case err == nil:
					setHealth(it, u)
				case apierrors.IsNotFound(err):
					it.res.Health, it.res.HealthMessage = status.NotFoundStatus.String(), "object not found"
				case isAPIStatus(err):
					it.res.Health, it.res.HealthMessage = status.UnknownStatus.String(), "read: "+oneLine(err.Error())
				default:
					// The wait ran out mid-poll (the client's rate limiter says so before the
					// context does), or a transient transport error: keep the last status.
				}
				return nil
			})
		}
		_ = g.Wait() // workers report per object, never an error
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("cluster %s: wait for health: %w", c.Name, err)
		}

		allCurrent, giveUp := true, false
		for i, it := range targets {
			if it.res.Health != status.CurrentStatus.String() {
				allCurrent = false
			}
			if it.res.Health == status.FailedStatus.String() {
				failedInARow[i]++
				if failedInARow[i] >= failedPolls {
					giveUp = true
				}
			} else {
				failedInARow[i] = 0
			}
		}
		if allCurrent || giveUp {
			return false, nil
		}
		if err := sleep(hctx, a.opts.PollInterval); err != nil {
			if ctx.Err() != nil {
				return false, fmt.Errorf("cluster %s: wait for health: %w", c.Name, ctx.Err())
			}
			return true, nil
		}
	}
}

func setHealth(it *item, u *unstructured.Unstructured) {
	if u == nil {
		it.res.Health, it.res.HealthMessage = status.UnknownStatus.String(), "no live object to check"
		return
	}
	res, err := status.Compute(u)
	if err != nil {
		it.res.Health, it.res.HealthMessage = status.UnknownStatus.String(), oneLine(err.Error())
		return
	}
	it.res.Health, it.res.HealthMessage = res.Status.String(), oneLine(res.Message)
}

// healthTimeoutNote names the objects that were not healthy when the wait ran out.
func healthTimeoutNote(items []*item, timeout time.Duration) string {
	var waiting []string
	for _, it := range items {
		if it.applied() && it.res.Health != status.CurrentStatus.String() {
			w := it.Ref.String() + " " + it.res.Health
			if it.res.HealthMessage != "" {
				w += " (" + it.res.HealthMessage + ")"
			}
			waiting = append(waiting, w)
		}
	}
	if len(waiting) > 5 {
		waiting = append(waiting[:5], fmt.Sprintf("and %d more", len(waiting)-5))
	}
	return fmt.Sprintf("health: not healthy after %s: %s", timeout, strings.Join(waiting, ", "))
}
