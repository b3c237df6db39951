package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/internal/golden"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func seqPath(prefix string, e history.Entry) string { return prefix + strconv.FormatInt(e.Seq, 10) }

// Someone on the loopback page (no sign-in) reads what kubeplan did: the overview, an
// apply with its diffs, an object's timeline, the search.
func TestPagesShowTheHistory(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, Open{})
	apply, plan, drift := f.entry(t, history.Apply, shop), f.entry(t, history.Plan, shop), f.entry(t, history.DriftCheck, shop)
	for _, tc := range []struct {
		name, path string
		want       []string
		// order lists strings that appear in this order (newest first).
		order []string
	}{
		{name: "overview: projects × clusters with last plan, last apply, drift and lock; recent applies", path: "/ui/",
			want: []string{"acme/shop", "acme/vault", `<td data-label="Project">web</td>`, `<td data-label="Cluster">prod-eu</td>`,
				`href="` + seqPath("/ui/entries/", plan) + `">planned</a>`, `href="` + seqPath("/ui/entries/", apply) + `"><span class="badge good">succeeded</span>`,
				`<span class="badge warn">drifted</span> <span class="dim">1 changed, 0 missing, 0 extra</span>`, `href="` + seqPath("/ui/entries/", drift) + `">last check</a>`,
				`<span class="badge warn">locked</span> by bob for <a href="https://github.example/acme/shop/pull/12">#12</a>`,
				"<h2>Recent applies</h2>", "1 created, 1 configured", "by bob"}},
		{name: "entry: approvals, verdict, plan hash, diffs and links back", path: seqPath("/ui/entries/", apply),
			want: []string{"<strong>web</strong> on <strong>prod-eu</strong>", `<a href="https://github.example/acme/shop/pull/12">PR #12</a>`,
				`<a href="https://github.example/acme/shop/commit/0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"><code>0a1b2c3d4e5f</code></a>`,
				"alice <span class=\"dim\">on <code>0a1b2c3d4e5f</code>", `<span class="badge good">allowed</span>`, "sha256:5f1e", apply.Hash,
				`<a href="/ui/objects?cluster=prod-eu&amp;kind=Deployment&amp;name=api&amp;namespace=shop">Deployment shop/api</a>`,
				`<span class="badge good">configured</span>`, `<span class="badge good">Current</span>`,
				`<span class="del">-  replicas: 2` + "\n</span>", `<span class="add">&#43;  replicas: 3` + "\n</span>", `<span class="hunk">@@ -3,3 &#43;3,3 @@` + "\n</span>"}},
		{name: "timeline: every change and drift on the object, newest first, with PR, approvers, diff, outcome and cause",
			path: "/ui/objects?cluster=prod-eu&kind=Deployment&namespace=shop&name=api",
			want: []string{"<h1>Deployment shop/api <span class=\"dim\">on prod-eu</span></h1>", "approved by alice",
				"`.spec.replicas` changed by &#34;kubectl&#34; (Update, subresource scale)", `<span class="add">&#43;  replicas: 5` + "\n</span>"},
			order: []string{seqPath(">#", drift) + "<", seqPath(">#", apply) + "<", seqPath(">#", plan) + "<"}},
		{name: "search by name", path: "/ui/search?q=api",
			want: []string{`<a href="/ui/objects?cluster=prod-eu&amp;kind=Deployment&amp;name=api&amp;namespace=shop">Deployment shop/api</a>`, "3 entries"}},
		{name: "search by kind", path: "/ui/search?q=statefulset",
			want: []string{`<a href="/ui/objects?cluster=prod-us&amp;kind=StatefulSet&amp;name=vault-secret-store&amp;namespace=vault">StatefulSet vault/vault-secret-store</a>`}},
		{name: "search that finds nothing says so", path: "/ui/search?q=nothing-like-this", want: []string{"No object matches “nothing-like-this”"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s\n%s", tc.path, resp.Status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: missing %q in\n%s", tc.path, w, body)
				}
			}
			last := -1
			for _, w := range tc.order {
				i := strings.Index(body, w)
				if i <= last {
					t.Errorf("GET %s: %q not after the one before (newest first)", tc.path, w)
				}
				last = i
			}
		})
	}
}

// Object names and diffs are written by whoever opens a pull request: the page shows them as
// text, never as markup, and links back to the forge only over http(s).
func TestHostileValuesAreRenderedInert(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, Open{})
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"entry page", seqPath("/ui/entries/", f.entry(t, history.Apply, shop)), []string{
			"ConfigMap shop/&lt;script&gt;alert(1)&lt;/script&gt;",
			`<span class="add">&#43;  page: &lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;` + "\n</span>"}},
		{"timeline", "/ui/objects?cluster=prod-eu&kind=ConfigMap&namespace=shop&name=" + `%3Cscript%3Ealert(1)%3C%2Fscript%3E`, []string{
			"<h1>ConfigMap shop/&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;"}},
		{"search", "/ui/search?q=%3Cscript", []string{
			`value="&lt;script"`, "ConfigMap shop/&lt;script&gt;alert(1)&lt;/script&gt;</a>",
			`href="/ui/objects?cluster=prod-eu&amp;kind=ConfigMap&amp;name=%3Cscript%3Ealert%281%29%3C%2Fscript%3E&amp;namespace=shop"`}},
		{"a javascript: link from the record is shown as text", seqPath("/ui/entries/", f.entry(t, history.Rollout, vault)), []string{
			"<dd>PR #4 · <a href=\"https://github.example/acme/vault/commit/77\"><code>77</code></a></dd>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s\n%s", tc.path, resp.Status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("missing %q in\n%s", w, body)
				}
			}
			// The page itself has no script at all: any <script in it came from the data.
			for _, bad := range []string{"<script", "</pre><script", "javascript:"} {
				if strings.Contains(strings.ToLower(body), bad) {
					t.Errorf("raw %q reached the page:\n%s", bad, body)
				}
			}
		})
	}
}

// A user who cannot read acme/vault on the forge sees none of it: not on the overview, not
// an entry (404, as if it did not exist), not in a timeline, the search or the API.
func TestUnreadableRepositoryIsInvisible(t *testing.T) {
	f := newFixture(t)
	vaultEntry := f.entry(t, history.Rollout, vault)
	for _, tc := range []struct {
		name   string
		auth   Authorizer
		path   string
		status int
		// want must be present (proves the page rendered what the user may read); absent
		// must not (default: acme/vault's names, cluster and actor).
		want, absent []string
	}{
		{"overview", reader{"mallory", []string{shop}}, "/ui/", 200, []string{"acme/shop"}, nil},
		{"entry of the unreadable repository", reader{"mallory", []string{shop}}, seqPath("/ui/entries/", vaultEntry), 404, []string{"There is no such entry"}, nil},
		{"timeline of its object", reader{"mallory", []string{shop}}, "/ui/objects?cluster=prod-us&kind=StatefulSet&namespace=vault&name=vault-secret-store", 200,
			[]string{"No change or drift recorded"}, []string{"dave", "PR #4", "configured", "acme/vault"}},
		{"search for its object", reader{"mallory", []string{shop}}, "/ui/search?q=secret-store", 200, []string{"No object matches"}, nil},
		{"API list", reader{"mallory", []string{shop}}, "/api/v1/history", 200, []string{`"repo": "acme/shop"`}, nil},
		{"API list asking for it", reader{"mallory", []string{shop}}, "/api/v1/history?repo=acme/vault", 200, []string{`"entries": []`}, nil},
		{"API entry", reader{"mallory", []string{shop}}, seqPath("/api/v1/history/", vaultEntry), 404, []string{"no such entry"}, nil},
		{"overview of a user who reads nothing", reader{"eve", nil}, "/ui/", 200, []string{"Nothing yet"}, nil},
		{"API of a user who reads nothing", reader{"eve", nil}, "/api/v1/history", 200, []string{`"entries": []`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := f.serve(t, tc.auth)
			resp, body := get(t, srv.URL+tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET %s: %s, want %d\n%s", tc.path, resp.Status, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("missing %q in\n%s", w, body)
				}
			}
			if tc.absent == nil {
				tc.absent = []string{"vault", "prod-us", "dave"}
			}
			for _, secret := range tc.absent {
				if strings.Contains(body, secret) {
					t.Errorf("%q of the unreadable repository reached the user:\n%s", secret, body)
				}
			}
		})
	}
}

// Every answer under /ui and /api carries the security headers: no script may run, nothing
// frames the page, nothing is cached, and errors too.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, Open{})
	for _, path := range []string{"/ui/", seqPath("/ui/entries/", f.entries[0]), "/ui/entries/999", "/ui/entries/x",
		"/ui/objects?kind=Deployment&name=api", "/ui/search?q=a", "/ui/nope", "/ui/static/style.css",
		"/api/v1/history", "/api/v1/history?limit=0", "/api/v1/history/1", "/api/v1/history/999"} {
		resp, _ := get(t, srv.URL+path)
		for header, want := range map[string]string{
			"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin",
			"Cache-Control":           "no-store",
		} {
			if got := resp.Header.Get(header); got != want {
				t.Errorf("GET %s (%s): %s = %q, want %q", path, resp.Status, header, got, want)
			}
		}
	}
}

// Version and build information is for signed-in users only.
func TestVersionShownOnlyWhenSignedIn(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		auth Authorizer
		want bool
	}{{"loopback, nobody signed in", Open{}, false}, {"signed in", reader{"alice", []string{shop}}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, body := get(t, f.serve(t, tc.auth).URL+"/ui/")
			if got := strings.Contains(body, "kubeplan v9.9.9-test"); got != tc.want {
				t.Errorf("version shown: %v, want %v", got, tc.want)
			}
		})
	}
}

func apiSeqs(t *testing.T, url string) (seqs []int64, next string) {
	t.Helper()
	resp, body := get(t, url)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s %s\n%s", url, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	var page struct {
		Entries []history.Entry `json:"entries"`
		Next    string          `json:"next"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		seqs = append(seqs, e.Seq)
	}
	return seqs, page.Next
}

// The API's filters are history.Filter's, as query parameters; pages follow "next".
func TestAPIFiltersAndPages(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, Open{})
	seq := func(kind history.Kind, repo string) int64 { return f.entry(t, kind, repo).Seq }
	plan, apply, drift, rollout := seq(history.Plan, shop), seq(history.Apply, shop), seq(history.DriftCheck, shop), seq(history.Rollout, vault)
	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"", []int64{rollout, drift, apply, plan}},
		{"repo=acme/shop", []int64{drift, apply, plan}},
		{"repo=github:acme/vault", []int64{rollout}},
		{"project=web&cluster=prod-eu", []int64{drift, apply, plan}},
		{"cluster=prod-us", []int64{rollout}},
		{"object=Deployment/shop/api", []int64{drift, apply, plan}},
		{"kind=apply", []int64{apply}},
		{"kind=plan,apply", []int64{apply, plan}},
		{"kind=plan&kind=drift_check", []int64{drift, plan}},
		{"since=2026-11-30T10:00:00Z", []int64{rollout, drift}},
		{"since=90m", []int64{rollout}}, // now is 13:00
		{"since=1d", []int64{rollout, drift, apply, plan}},
		{"before=" + strconv.FormatInt(drift, 10), []int64{apply, plan}},
		{"repo=acme/elsewhere", nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got, next := apiSeqs(t, srv.URL+"/api/v1/history?"+tc.query)
			if !slices.Equal(got, tc.want) || next != "" {
				t.Errorf("entries %v next %q, want %v and no next page", got, next, tc.want)
			}
		})
	}
	t.Run("paging one by one through next", func(t *testing.T) {
		var all []int64
		url := "/api/v1/history?repo=acme/shop&limit=1"
		for url != "" {
			got, next := apiSeqs(t, srv.URL+url)
			if len(got) != 1 {
				t.Fatalf("GET %s: %v, want one entry", url, got)
			}
			all, url = append(all, got...), next
		}
		if want := []int64{drift, apply, plan}; !slices.Equal(all, want) {
			t.Errorf("paged through %v, want %v", all, want)
		}
	})
	t.Run("one entry", func(t *testing.T) {
		_, body := get(t, srv.URL+"/api/v1/history/"+strconv.FormatInt(apply, 10))
		golden.Assert(t, "ui-api-entry.json", body)
	})
	t.Run("a page", func(t *testing.T) {
		_, body := get(t, srv.URL+"/api/v1/history?kind=drift_check,plan&limit=1")
		golden.Assert(t, "ui-api-history.json", body)
	})
}

// A query the page or API cannot use is refused with 400 and says what was wrong.
func TestBadQueriesAreRefusedClearly(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, Open{})
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/api/v1/history?limit=0", 400, `limit \"0\": want a whole number from 1 to 500`},
		{"/api/v1/history?limit=lots", 400, `limit \"lots\": want a whole number from 1 to 500`},
		{"/api/v1/history?kind=deploy", 400, `kind \"deploy\": want one of plan, apply, rollout, revert, drift_apply, drift_check`},
		{"/api/v1/history?since=yesterday", 400, `since \"yesterday\": want a time (RFC 3339`},
		{"/api/v1/history?before=-1", 400, `before \"-1\": want an entry's seq`},
		{"/api/v1/history?object=Deployment", 400, `object \"Deployment\": want KIND/NAMESPACE/NAME`},
		{"/api/v1/history?repo=bitbucket:a/b", 400, `repo \"bitbucket:a/b\": want org/repo`},
		{"/api/v1/history/first", 400, `entry \"first\": want an entry's seq`},
		{"/api/v1/history/999", 404, "no such entry"},
		{"/ui/entries/first", 400, `entry &#34;first&#34;: want an entry&#39;s seq`},
		{"/ui/entries/999", 404, "There is no such entry"},
		{"/ui/objects?kind=Deployment", 400, "The timeline needs kind and name"},
		{"/ui/objects?kind=Deployment&name=api&before=soon", 400, `before &#34;soon&#34;: want an entry&#39;s seq`},
		{"/ui/search?q=" + strings.Repeat("a", 201), 400, "too long"},
		{"/ui/nope", 404, "No such page."},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.path)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("GET %s: %s\n%s\nwant %d saying %q", tc.path, resp.Status, body, tc.status, tc.want)
			}
		})
	}
}
