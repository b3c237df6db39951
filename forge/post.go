package forge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// A comment kubeplan creates ends with a hidden post marker holding a random key, so that
// when the forge answers a creation with a server error (or not at all) after storing the
// comment, kubeplan finds it by its key instead of posting it a second time.
const (
	postMarkerStart = "\n\n<!-- kubeplan:post "
	postMarkerEnd   = " -->"
	postKeyLen      = 16 // hex digits
	// PostMarkerLen is what the marker adds to a comment: forges' comment limits less this
	// are what kubeplan may write.
	PostMarkerLen = len(postMarkerStart) + postKeyLen + len(postMarkerEnd)
)

// StripPostMarker returns a comment's body as kubeplan wrote it, without its post marker.
func StripPostMarker(body string) string {
	i := strings.LastIndex(body, postMarkerStart)
	if i < 0 || len(body)-i != PostMarkerLen || !strings.HasSuffix(body, postMarkerEnd) {
		return body
	}
	if _, err := hex.DecodeString(body[i+len(postMarkerStart) : len(body)-len(postMarkerEnd)]); err != nil {
		return body
	}
	return body[:i]
}

// PostedComment creates a comment on the forge: the body and the HTTP status of the answer
// (0 when none came).
type PostedComment func(ctx context.Context, body string) (id int64, status int, err error)

// ListComments lists a pull request's comments as the forge stores them, oldest first.
type ListComments func(ctx context.Context) ([]Comment, error)

// CreateOnce posts body with a post marker. When the answer is a server error or none came
// (the comment may be stored all the same), it waits a moment, looks for the marker among the
// pull request's comments, and posts again only if it is not there: at most three times.
func CreateOnce(ctx context.Context, body string, post PostedComment, list ListComments) (int64, error) {
	key := make([]byte, postKeyLen/2)
	if _, err := rand.Read(key); err != nil {
		return 0, fmt.Errorf("post marker: %w", err)
	}
	marker := postMarkerStart + hex.EncodeToString(key) + postMarkerEnd
	marked := body + marker
	wait := time.Second
	for attempt := 1; ; attempt++ {
		id, status, err := post(ctx, marked)
		if err == nil {
			return id, nil
		}
		if status != 0 && status < 500 || ctx.Err() != nil || attempt == 3 {
			return 0, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return 0, err
		}
		wait *= 2
		comments, lerr := list(ctx)
		if lerr != nil {
			return 0, fmt.Errorf("%w (and looking for the comment failed: %v)", err, lerr)
		}
		for _, c := range comments {
			if strings.HasSuffix(c.Body, marker) {
				return c.ID, nil
			}
		}
	}
}
