package webauth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// CanRead says whether u, the user of ctx's session, may read repo ("owner/name" or
// "group/project") on forge, asking the forge with their own token. Answers are reused for a
// minute (AccessTTL) per user × repository, so a page of many rows asks once. Without sign-in
// configured everyone may read everything (the page is on loopback only).
func (a *Auth) CanRead(ctx context.Context, u User, forge, repo string) (bool, error) {
	if !a.SignInConfigured() {
		return true, nil
	}
	s, ok := sessionFrom(ctx)
	if !ok {
		return false, errNotSignedIn
	}
	// The answer is the session's, whoever u claims to be.
	if s.User != u || u.Forge != forge {
		return false, nil
	}
	p := a.forges[forge]
	if p == nil {
		return false, nil
	}
	key := forge + "\x00" + u.Login + "\x00" + repo
	if ok, hit := a.access.get(key, a.now()); hit {
		return ok, nil
	}
	ok, err := p.canRead(ctx, s.Token, repo)
	if err != nil {
		return false, err
	}
	a.access.put(key, ok, a.now())
	return ok, nil
}

// Readable returns the repositories among repoKeys ("github:owner/name",
// "gitlab:group/project") the user of ctx's session may read, in the order given.
func (a *Auth) Readable(ctx context.Context, u User, repoKeys []string) ([]string, error) {
	ok := make([]bool, len(repoKeys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	seen := map[string]bool{}
	for i, k := range repoKeys {
		if seen[k] {
			continue
		}
		seen[k] = true
		forge, repo, valid := strings.Cut(k, ":")
		if !valid {
			continue
		}
		g.Go(func() error {
			can, err := a.CanRead(gctx, u, forge, repo)
			if err != nil {
				return fmt.Errorf("read access of %s to %s: %w", u.Login, k, err)
			}
			ok[i] = can
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []string
	for i, k := range repoKeys {
		if ok[i] {
			out = append(out, k)
		}
	}
	return out, nil
}

// accessCache keeps read-access answers for ttl, at most max of them.
type accessCache struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	m   map[string]accessEntry
}

type accessEntry struct {
	ok    bool
	until time.Time
}

func newAccessCache(ttl time.Duration, max int) *accessCache {
	return &accessCache{ttl: ttl, max: max, m: map[string]accessEntry{}}
}

func (c *accessCache) get(key string, now time.Time) (ok, hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.m[key]
	if !found || !now.Before(e.until) {
		return false, false
	}
	return e.ok, true
}

func (c *accessCache) put(key string, ok bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		// Still full of live answers: drop some; they are asked again.
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = accessEntry{ok: ok, until: now.Add(c.ttl)}
}
