package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kubeplan/kubeplan/history"
)

// historyPage is the answer of /api/v1/history.
type historyPage struct {
	Entries []history.Entry `json:"entries"`
	// Next is the URL (path and query, on this server) of the next, older page; empty on
	// the last.
	Next string `json:"next,omitempty"`
}

type apiError struct {
	Error string `json:"error"`
}

func (u *UI) apiHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, asked, err := parseFilter(q, u.opts.Now())
	if err != nil {
		u.apiFail(w, r, err)
		return
	}
	readable, err := u.readable(r.Context())
	if err != nil {
		u.apiFail(w, r, err)
		return
	}
	page := historyPage{Entries: []history.Entry{}}
	f.Repos = narrow(readable, asked)
	entries, next, err := u.page(r.Context(), f, q, "/api/v1/history")
	if err != nil {
		u.apiFail(w, r, err)
		return
	}
	page.Entries, page.Next = append(page.Entries, entries...), next
	writeJSON(w, http.StatusOK, page)
}

func (u *UI) apiEntry(w http.ResponseWriter, r *http.Request) {
	e, found, err := u.readableEntry(r)
	switch {
	case err != nil:
		u.apiFail(w, r, err)
	case !found:
		writeJSON(w, http.StatusNotFound, apiError{"no such entry in the history you can read"})
	default:
		writeJSON(w, http.StatusOK, e)
	}
}

func (u *UI) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	if br, ok := errors.AsType[badRequest](err); ok {
		writeJSON(w, http.StatusBadRequest, apiError{br.msg})
		return
	}
	u.opts.Log.Error("history API", "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusInternalServerError, apiError{"the history could not be read; the server's log says why"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // served as JSON with nosniff: "&" reads better than "\u0026"
	_ = enc.Encode(v)
}

// page reads the entries f selects, f.Limit of them, newest first, and the link to the next,
// older page (path with q and before set) when there is one. No readable repository is no
// entries, without asking the store.
func (u *UI) page(ctx context.Context, f history.Filter, q url.Values, path string) ([]history.Entry, string, error) {
	if len(f.Repos) == 0 {
		return nil, "", nil
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	entries, err := u.opts.Store.History(ctx, f)
	if err != nil || len(entries) <= limit {
		return entries, "", err
	}
	entries = entries[:limit]
	next := cloneValues(q)
	next.Set("before", strconv.FormatInt(entries[len(entries)-1].Seq, 10))
	return entries, path + "?" + next.Encode(), nil
}
