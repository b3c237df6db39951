package driftwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/kubeplan/kubeplan/drift"
)

// Slack posts each notice to a Slack-compatible incoming webhook ({"text": …}; Mattermost,
// Rocket.Chat and Microsoft Teams' Slack-compatible hooks take the same).
type Slack struct {
	// URL is the webhook: a secret, never put in an error or a log line.
	URL  string
	HTTP *http.Client
}

// maxFields bounds the "who changed what" lines of one message.
const maxFields = 5

// Notify posts one message for the notice.
func (s *Slack) Notify(ctx context.Context, n Notice) error {
	body, _ := json.Marshal(map[string]string{"text": SlackText(n)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("slack: the drift webhook URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	hc := s.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is the credential: keep it out of the error
		}
		return fmt.Errorf("slack: post drift notice of %s on %s: %w", n.Project, n.Cluster, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("slack: post drift notice of %s on %s: %s", n.Project, n.Cluster, resp.Status)
	}
	return nil
}

// SlackText is the message for a notice: what happened where, the counts, and who changed
// what (the first few fields, with their field manager).
func SlackText(n Notice) string {
	r := n.Report
	where := fmt.Sprintf("cluster *%s*, project *%s* (%s at %s)", n.Cluster, n.Project, n.Repository, short(n.SHA))
	if n.Resolved() {
		return fmt.Sprintf(":white_check_mark: Drift resolved on %s: the cluster matches git again.", where)
	}
	head := "Drift"
	if n.Previous != "" {
		head = "Drift changed"
	}
	c := r.Counts()
	lines := []string{fmt.Sprintf(":warning: %s on %s: %d changed, %d missing, %d extra (%d objects checked).", head, where, c.Changed, c.Missing, c.Extra, r.Checked)}
	shown, more := 0, 0
	for _, o := range r.Objects {
		if !o.Counted() {
			continue
		}
		if o.State != drift.Changed {
			if shown < maxFields {
				lines = append(lines, fmt.Sprintf("• %s %s", o.Object, o.State))
				shown++
			} else {
				more++
			}
			continue
		}
		for _, f := range o.Fields {
			if f.ByDesign != "" {
				continue
			}
			if shown < maxFields {
				lines = append(lines, fmt.Sprintf("• %s: %s", o.Object, f))
				shown++
			} else {
				more++
			}
		}
	}
	if more > 0 {
		lines = append(lines, fmt.Sprintf("… and %d more", more))
	}
	if n.Revert != "" {
		lines = append(lines, "Revert: "+n.Revert)
	}
	return strings.Join(lines, "\n")
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}
