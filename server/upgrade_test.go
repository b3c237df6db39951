package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/store"
	"github.com/kubeplan/kubeplan/webhook"
)

// A push queued by a kubeplan that kept the forge's action word ("synchronize", "update") and
// stopped before working on it is planned by the kubeplan it was upgraded to.
func TestAPushQueuedBeforeAnUpgradeIsStillPlanned(t *testing.T) {
	for _, c := range []struct{ forge, word, extra string }{
		{"github", "synchronize", fmt.Sprintf(`,"installationId":%d`, forgeemu.InstallationID)},
		{"gitlab", "update", `,"projectId":1`},
	} {
		t.Run(c.forge, func(t *testing.T) {
			ctx := context.Background()
			emu, repo, n := bumpPR(t, unique("upgrade-"+c.forge), "")
			head := emu.PRState(repo, n).HeadSHA
			state := filepath.Join(t.TempDir(), "state.db")
			q, err := store.Open(ctx, state)
			if err != nil {
				t.Fatal(err)
			}
			// The job as the previous version queued it: the event's JSON with the forge's word.
			payload := fmt.Sprintf(`{"forge":%q,"delivery":"legacy-1","kind":"pull_request","action":%q,"repo":%q,"number":%d,"headSha":%q,"sender":"alice"%s}`,
				c.forge, c.word, repo, n, head, c.extra)
			key := fmt.Sprintf("%s:%s#%d", c.forge, repo, n)
			if ok, err := q.Enqueue(ctx, c.forge+":legacy-1", store.Job{Key: key, Kind: webhook.PlanJobKind, Payload: []byte(payload)}, true); err != nil || !ok {
				t.Fatalf("enqueue: %v %v", ok, err)
			}
			q.Close()

			up := start(t, emu, state, true)
			pr, st := up.waitStatus(repo, n, head)
			if st.State != forge.Success || len(planComments(pr)) != 1 {
				t.Fatalf("plan status %+v, %d plan comments: want the queued push planned", st, len(planComments(pr)))
			}
		})
	}
}
