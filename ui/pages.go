package ui

import (
	"bytes"
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/store"
)

// How far the overview looks back: it reads the newest entries of each kind, not the whole
// history, so that the page stays quick on a store of years. The search shows at most
// searchShown objects.
const (
	overviewScan = 500
	recentShown  = 20
	searchShown  = 100
)

// applyKinds are the entries that changed a cluster.
var applyKinds = []history.Kind{history.Apply, history.Rollout, history.Revert, history.DriftApply}

// view is what every page template gets.
type view struct {
	Title string
	// User is the signed-in user ("" when nobody is); Version shows to signed-in users only.
	User, Version string
	// Q is the search box's text.
	Q    string
	Data any
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any) {
	v := view{Title: title, Data: data, Q: r.URL.Query().Get("q")}
	if login, ok := u.opts.Auth.SignedIn(r.Context()); ok {
		v.User, v.Version = login, u.opts.Version
	}
	var buf bytes.Buffer
	if err := u.pages[page].Execute(&buf, v); err != nil {
		u.opts.Log.Error("render page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail answers with an error page; a badRequest says what was wrong with the query, any
// other error is logged and not shown.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	u.render(w, r, status, "error.html", http.StatusText(status), msg)
}

func (u *UI) failErr(w http.ResponseWriter, r *http.Request, err error) {
	if br, ok := errors.AsType[badRequest](err); ok {
		u.fail(w, r, http.StatusBadRequest, br.msg)
		return
	}
	u.opts.Log.Error("history page", "path", r.URL.Path, "err", err)
	u.fail(w, r, http.StatusInternalServerError, "The history could not be read; the server's log says why.")
}

// target is one row of the overview: a project on a cluster of a repository.
type target struct {
	Repo             string // forge:org/repo
	Project, Cluster string
	LastPlan         *history.Entry
	LastApply        *history.Entry
	Drift            *store.DriftRecord
	LastDriftCheck   *history.Entry
	Lock             *store.Lock
	// LockURL links to the pull request holding the lock, when an entry of it is known.
	LockURL string
}

type repoTargets struct {
	Repo    string
	Targets []*target
}

type overviewData struct {
	Repos  []repoTargets
	Recent []history.Entry
}

func (u *UI) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	repos, err := u.readable(ctx)
	if err != nil {
		u.failErr(w, r, err)
		return
	}
	var d overviewData
	if len(repos) == 0 {
		u.render(w, r, http.StatusOK, "overview.html", "Overview", d)
		return
	}
	targets := map[[3]string]*target{}
	at := func(repo, project, cluster string) *target {
		k := [3]string{repo, project, cluster}
		if targets[k] == nil {
			targets[k] = &target{Repo: repo, Project: project, Cluster: cluster}
		}
		return targets[k]
	}
	prURL := map[string]string{} // forge:repo#number → the pull request's page
	read := func(kinds []history.Kind, each func(e *history.Entry, t *target)) ([]history.Entry, error) {
		entries, err := u.opts.Store.History(ctx, history.Filter{Repos: repos, Kinds: kinds, Limit: overviewScan})
		if err != nil {
			return nil, err
		}
		for i := range entries {
			e := &entries[i]
			if e.Number > 0 && !e.Issue && safeURL(e.URL) != "" {
				prURL[prKey(e.Forge, e.Repo, e.Number)] = e.URL
			}
			each(e, at(history.RepoKey(e.Forge, e.Repo), e.Project, e.Cluster))
		}
		return entries, nil
	}
	if _, err := read([]history.Kind{history.Plan}, func(e *history.Entry, t *target) {
		if t.LastPlan == nil {
			t.LastPlan = e
		}
	}); err != nil {
		u.failErr(w, r, err)
		return
	}
	applies, err := read(applyKinds, func(e *history.Entry, t *target) {
		if t.LastApply == nil {
			t.LastApply = e
		}
	})
	if err != nil {
		u.failErr(w, r, err)
		return
	}
	d.Recent = applies[:min(len(applies), recentShown)]
	if _, err := read([]history.Kind{history.DriftCheck}, func(e *history.Entry, t *target) {
		if t.LastDriftCheck == nil {
			t.LastDriftCheck = e
		}
	}); err != nil {
		u.failErr(w, r, err)
		return
	}
	drifts, err := u.opts.Store.Drifts(ctx, "")
	if err != nil {
		u.failErr(w, r, err)
		return
	}
	for i, dr := range drifts {
		if slices.Contains(repos, dr.Repo) {
			at(dr.Repo, dr.Project, dr.Cluster).Drift = &drifts[i]
		}
	}
	locks, err := u.opts.Store.Locks(ctx, "")
	if err != nil {
		u.failErr(w, r, err)
		return
	}
	for i, l := range locks {
		if slices.Contains(repos, l.Repo) {
			t := at(l.Repo, l.Project, l.Cluster)
			t.Lock, t.LockURL = &locks[i], prURL[l.PR]
		}
	}
	all := make([]*target, 0, len(targets))
	for _, t := range targets {
		all = append(all, t)
	}
	slices.SortFunc(all, func(a, b *target) int {
		return cmp.Or(cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Project, b.Project), cmp.Compare(a.Cluster, b.Cluster))
	})
	for _, t := range all {
		if n := len(d.Repos); n == 0 || d.Repos[n-1].Repo != t.Repo {
			d.Repos = append(d.Repos, repoTargets{Repo: t.Repo})
		}
		d.Repos[len(d.Repos)-1].Targets = append(d.Repos[len(d.Repos)-1].Targets, t)
	}
	u.render(w, r, http.StatusOK, "overview.html", "Overview", d)
}

// prKey names a pull request as the store's locks do: forge:org/repo#number.
func prKey(forge, repo string, number int) string {
	return history.RepoKey(forge, repo) + "#" + strconv.Itoa(number)
}

// readableEntry reads one entry, or says it is not there: an entry of a repository the user
// cannot read is not there either, so that its existence is not given away.
func (u *UI) readableEntry(r *http.Request) (history.Entry, bool, error) {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 1 {
		return history.Entry{}, false, badf("entry %q: want an entry's seq, a whole number from 1", r.PathValue("seq"))
	}
	e, found, err := u.opts.Store.HistoryEntry(r.Context(), seq)
	if err != nil || !found {
		return e, false, err
	}
	readable, err := u.opts.Auth.Readable(r.Context(), []string{history.RepoKey(e.Forge, e.Repo)})
	if err != nil {
		return history.Entry{}, false, err
	}
	if !slices.Contains(readable, history.RepoKey(e.Forge, e.Repo)) {
		return history.Entry{}, false, nil
	}
	return e, true, nil
}

func (u *UI) entry(w http.ResponseWriter, r *http.Request) {
	e, found, err := u.readableEntry(r)
	switch {
	case err != nil:
		u.failErr(w, r, err)
	case !found:
		u.fail(w, r, http.StatusNotFound, "There is no such entry in the history you can read.")
	default:
		u.render(w, r, http.StatusOK, "entry.html", "#"+strconv.FormatInt(e.Seq, 10)+" "+string(e.Kind)+" "+e.Project+" on "+e.Cluster, e)
	}
}

// change is one entry of an object's timeline with what it did to, or saw on, the object.
type change struct {
	Entry   history.Entry
	Objects []history.Object
}

type timelineData struct {
	Cluster string
	Object  plan.ObjectRef
	Changes []change
	// Older links to the next page, when there is one.
	Older string
}

func (u *UI) objects(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := timelineData{Cluster: q.Get("cluster"), Object: plan.ObjectRef{Kind: q.Get("kind"), Namespace: q.Get("namespace"), Name: q.Get("name")}}
	if d.Object.Kind == "" || d.Object.Name == "" {
		u.fail(w, r, http.StatusBadRequest, "Which object? The timeline needs kind and name (and namespace for a namespaced object, cluster to keep to one cluster).")
		return
	}
	f := history.Filter{Cluster: d.Cluster, Object: &d.Object, Limit: defaultLimit}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			u.fail(w, r, http.StatusBadRequest, "before "+strconv.Quote(b)+": want an entry's seq, a whole number from 1")
			return
		}
		f.Before = n
	}
	repos, err := u.readable(r.Context())
	if err != nil {
		u.failErr(w, r, err)
		return
	}
	f.Repos = repos
	entries, older, err := u.page(r.Context(), f, q, "/ui/objects")
	if err != nil {
		u.failErr(w, r, err)
		return
	}
	d.Older = older
	for _, e := range entries {
		c := change{Entry: e}
		for _, o := range e.Objects {
			if sameObject(o.Object, d.Object) {
				c.Objects = append(c.Objects, o)
			}
		}
		d.Changes = append(d.Changes, c)
	}
	u.render(w, r, http.StatusOK, "objects.html", d.Object.String(), d)
}

func sameObject(a, b plan.ObjectRef) bool {
	return strings.EqualFold(a.Kind, b.Kind) && a.Namespace == b.Namespace && a.Name == b.Name &&
		(a.APIVersion == "" || b.APIVersion == "" || a.APIVersion == b.APIVersion)
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// found is one object the search found, on one cluster.
type found struct {
	Cluster string
	Object  plan.ObjectRef
	// Last is the newest entry that touched it; Count how many did.
	Last  history.Entry
	Count int
}

type searchData struct {
	Q     string
	Found []found
	More  bool
}

func (u *UI) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := searchData{Q: q}
	if q == "" {
		u.render(w, r, http.StatusOK, "search.html", "Search", d)
		return
	}
	if len(q) > 200 {
		u.fail(w, r, http.StatusBadRequest, "The search text is too long: 200 characters at most.")
		return
	}
	ctx := r.Context()
	repos, err := u.readable(ctx)
	if err != nil {
		u.failErr(w, r, err)
		return
	}
	matches, err := u.opts.Store.SearchObjects(ctx, repos, q, searchShown+1)
	if err != nil {
		u.failErr(w, r, err)
		return
	}
	if len(matches) > searchShown {
		matches, d.More = matches[:searchShown], true
	}
	for _, m := range matches {
		// The index keeps kinds in lower case: the newest entry says how the kind is written.
		e, ok, err := u.opts.Store.HistoryEntry(ctx, m.LastSeq)
		if err != nil {
			u.failErr(w, r, err)
			return
		}
		f := found{Cluster: m.Cluster, Object: plan.ObjectRef{Kind: m.Kind, Namespace: m.Namespace, Name: m.Name}, Last: e, Count: m.Entries}
		for _, o := range e.Objects {
			if ok && sameObject(o.Object, f.Object) {
				f.Object.Kind = o.Object.Kind
				break
			}
		}
		d.Found = append(d.Found, f)
	}
	u.render(w, r, http.StatusOK, "search.html", "Search: "+q, d)
}
