package workflow

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/repoconfig"
)

func targetsOn(pairs ...string) []target {
	var out []target
	for _, p := range pairs {
		project, cluster, _ := strings.Cut(p, "@")
		out = append(out, target{project: repoconfig.Project{Name: project}, cluster: cluster})
	}
	return out
}

// A cluster's projects go in the order given (one may install what the next needs); the
// clusters themselves go side by side.
func TestByClusterKeepsOrderWithinAClusterAndRunsClustersSideBySide(t *testing.T) {
	targets := targetsOn("crds@prod", "app@prod", "crds@staging", "app@staging")
	stagingStarted := make(chan struct{})
	var mu sync.Mutex
	done := map[string][]string{}
	err := byCluster(targets, func(i int, tg target) error {
		if tg.key() != targets[i].key() {
			t.Errorf("target %d is %v, called with %v", i, targets[i], tg)
		}
		switch {
		case tg.cluster == "staging" && tg.project.Name == "crds":
			close(stagingStarted)
		case tg.cluster == "prod" && tg.project.Name == "crds":
			// One after another, staging would only start once prod is done: this waits for it.
			select {
			case <-stagingStarted:
			case <-time.After(10 * time.Second):
				return errors.New("staging did not start while prod was busy")
			}
		}
		mu.Lock()
		defer mu.Unlock()
		done[tg.cluster] = append(done[tg.cluster], tg.project.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"prod", "staging"} {
		if !slices.Equal(done[c], []string{"crds", "app"}) {
			t.Errorf("%s ran %v, want [crds app]", c, done[c])
		}
	}
}

// One cluster failing, even by a panic, neither stops the others nor the process.
func TestByClusterRunsEveryClusterToItsEndAndTurnsPanicsIntoErrors(t *testing.T) {
	cases := []struct {
		name string
		fail func()
		want string
	}{
		{"error", func() {}, "prod is down"},
		{"panic", func() { panic("nil map") }, "cluster prod: panicked: nil map"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var ran []string
			err := byCluster(targetsOn("web@prod", "jobs@prod", "web@staging", "web@dev"), func(_ int, tg target) error {
				mu.Lock()
				ran = append(ran, tg.project.Name+"@"+tg.cluster)
				mu.Unlock()
				if tg.cluster == "prod" {
					tc.fail()
					return errors.New("prod is down")
				}
				return nil
			})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			slices.Sort(ran)
			// prod stops at its first failure; the other clusters finish.
			if want := []string{"web@dev", "web@prod", "web@staging"}; !slices.Equal(ran, want) {
				t.Fatalf("ran %v, want %v", ran, want)
			}
		})
	}
}
