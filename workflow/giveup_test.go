package workflow_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/event"
	"github.com/kubeplan/kubeplan/forge"
	ghforge "github.com/kubeplan/kubeplan/forge/github"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/store"
	"github.com/kubeplan/kubeplan/workflow"
)

// When kubeplan gives up on an event (every attempt stopped it), the pull request learns it: a
// comment with the reason, and for a push the plan status of that commit turns to an error,
// so the merge stays blocked with a reason instead of pending for ever.
func TestThePullRequestLearnsThatKubeplanGaveUp(t *testing.T) {
	reason := (&store.GiveUpError{Stops: 3}).Error()
	for _, c := range []struct {
		name       string
		ev         func(head string) event.Event
		comment    string
		planStatus bool
	}{
		{"push", func(head string) event.Event {
			return event.Event{Kind: event.PullRequest, Action: event.Pushed, HeadSHA: head, Sender: "mallory"}
		}, "kubeplan gave up on the pushed event of this pull request (head ", true},
		{"command", func(string) event.Event {
			return event.Event{Kind: event.Comment, Action: event.Commented, Sender: "bob", CommentBody: "/apply -p web\nplease"}
		}, "kubeplan gave up on `/apply -p web` from @bob", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			emu := forgeemu.New("tok", "kubeplan[bot]")
			t.Cleanup(emu.Close)
			const repo = "acme/platform"
			base := emu.CreateRepo(repo, map[string]string{"a.yaml": "a: 1\n"})
			n := emu.OpenPR(repo, "mallory", "crash", base, map[string]string{"a.yaml": "a: 2\n"})
			head := emu.PRState(repo, n).HeadSHA
			client, err := ghforge.New(ghforge.Config{BaseURL: emu.GitHubAPI(), Token: "tok"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			w := &workflow.Workflow{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Forges: func(context.Context, event.Event) (workflow.Forge, error) { return client, nil }}
			ev := c.ev(head)
			ev.Forge, ev.Repo, ev.Number = event.GitHub, repo, n
			if err := w.GaveUp(context.Background(), ev, &store.GiveUpError{Stops: 3}); err != nil {
				t.Fatal(err)
			}
			pr := emu.PRState(repo, n)
			if len(pr.Comments) != 1 || !strings.Contains(pr.Comments[0].Body, c.comment) || !strings.Contains(pr.Comments[0].Body, reason) {
				t.Fatalf("comments %+v, want one saying %q and %q", pr.Comments, c.comment, reason)
			}
			st, ok := pr.LatestStatus(head, workflow.StatusPlan)
			if c.planStatus != ok || ok && (st.State != forge.Error || st.Description != "kubeplan gave up: "+reason) {
				t.Fatalf("plan status %+v (set: %v), want an error status: %v", st, ok, c.planStatus)
			}
		})
	}
}
