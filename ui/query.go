package ui

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/plan"
)

// badRequest is a query value the page or API cannot use; its message says which and why.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

const (
	defaultLimit = 50
	maxLimit     = 500
)

// readable is the repositories the request's user can read, sorted; none is an empty slice.
func (u *UI) readable(ctx context.Context) ([]string, error) {
	all, err := u.opts.Store.Repos(ctx)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	ok, err := u.opts.Auth.Readable(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("check which repositories the user can read: %w", err)
	}
	out := slices.Clone(ok)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// parseFilter reads history.Filter's query parameters: repo, project, cluster,
// object=KIND/NS/NAME (or KIND/NAME for cluster-scoped objects), kind (repeatable or
// comma-separated), since (RFC 3339 or a duration back from now: 90m, 24h, 7d), before (a
// seq) and limit. Repos is left to the caller, which narrows it to what the user can read.
func parseFilter(q url.Values, now time.Time) (f history.Filter, repos []string, err error) {
	for _, r := range q["repo"] {
		if r == "" {
			continue
		}
		forge, name, found := strings.Cut(r, ":")
		switch {
		case !found: // org/repo on any forge
			repos = append(repos, history.RepoKey("github", r), history.RepoKey("gitlab", r))
		case (forge == "github" || forge == "gitlab") && strings.Contains(name, "/"):
			repos = append(repos, r)
		default:
			return f, nil, badf("repo %q: want org/repo or github:org/repo or gitlab:group/project", r)
		}
	}
	f.Project, f.Cluster = q.Get("project"), q.Get("cluster")
	if o := q.Get("object"); o != "" {
		ref, err := parseObject(o)
		if err != nil {
			return f, nil, err
		}
		f.Object = &ref
	}
	for _, v := range q["kind"] {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); k == "" {
				continue
			}
			if !slices.Contains(history.Kinds, history.Kind(k)) {
				return f, nil, badf("kind %q: want one of %s", k, kindList())
			}
			f.Kinds = append(f.Kinds, history.Kind(k))
		}
	}
	if s := q.Get("since"); s != "" {
		if f.Since, err = parseSince(s, now); err != nil {
			return f, nil, err
		}
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			return f, nil, badf("before %q: want an entry's seq, a whole number from 1", b)
		}
		f.Before = n
	}
	f.Limit = defaultLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			return f, nil, badf("limit %q: want a whole number from 1 to %d", l, maxLimit)
		}
		f.Limit = n
	}
	return f, repos, nil
}

func kindList() string {
	s := make([]string, len(history.Kinds))
	for i, k := range history.Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// parseObject reads KIND/NAMESPACE/NAME, or KIND/NAME for a cluster-scoped object.
func parseObject(s string) (plan.ObjectRef, error) {
	parts := strings.Split(s, "/")
	for _, p := range parts {
		if p == "" {
			parts = nil
		}
	}
	switch len(parts) {
	case 3:
		return plan.ObjectRef{Kind: parts[0], Namespace: parts[1], Name: parts[2]}, nil
	case 2:
		return plan.ObjectRef{Kind: parts[0], Name: parts[1]}, nil
	}
	return plan.ObjectRef{}, badf("object %q: want KIND/NAMESPACE/NAME, or KIND/NAME for a cluster-scoped object", s)
}

// parseSince reads a time: RFC 3339, or a duration back from now (Go's units, and d for days).
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, badf("since %q: want a time (RFC 3339, 2026-01-02T15:04:05Z) or a duration back from now (90m, 24h, 7d)", s)
	}
	return now.Add(-d), nil
}

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// narrow is the Filter.Repos of a request: the repositories asked for (all when none) that
// the user can read. Empty means the request can see nothing.
func narrow(readable, asked []string) []string {
	if len(asked) == 0 {
		return readable
	}
	var out []string
	for _, r := range asked {
		if slices.Contains(readable, r) {
			out = append(out, r)
		}
	}
	return out
}
