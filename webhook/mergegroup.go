package webhook

import (
	"regexp"
	"strconv"

	"github.com/google/go-github/v60/github"

	"github.com/kubeplan/kubeplan/event"
)

// queueRef is the ref GitHub's merge queue gives a merge group: it names the queued pull
// request and the commit the group is built on (refs/heads/gh-readonly-queue/<base
// branch>/pr-<number>-<base sha>). The payload has no other field naming the pull request.
var queueRef = regexp.MustCompile(`^refs/heads/gh-readonly-queue/.+/pr-([0-9]+)-[0-9a-f]{40,64}$`)

// mergeGroupEvent reduces a merge_group payload to an event about the queued pull request; the
// head is the merge group's commit, which kubeplan plans and reports on.
func mergeGroupEvent(e *github.MergeGroupEvent) (event.Event, string) {
	action := githubAction(event.MergeGroup, e.GetAction())
	if action == "" {
		return event.Event{}, "merge_group action " + e.GetAction()
	}
	mg := e.GetMergeGroup()
	m := queueRef.FindStringSubmatch(mg.GetHeadRef())
	if m == nil {
		return event.Event{}, "merge group ref " + strconv.Quote(mg.GetHeadRef()) + " names no pull request"
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return event.Event{}, "merge group ref " + strconv.Quote(mg.GetHeadRef()) + " names no pull request"
	}
	return event.Event{
		Kind: event.MergeGroup, Action: action, Repo: e.GetRepo().GetFullName(), Number: n, HeadSHA: mg.GetHeadSHA(),
		Sender: e.GetSender().GetLogin(), SenderIsBot: e.GetSender().GetType() == "Bot", InstallationID: e.GetInstallation().GetID(),
	}, ""
}
