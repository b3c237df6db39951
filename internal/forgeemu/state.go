// Package forgeemu is an in-process GitHub and GitLab for tests and the demo. It keeps state
// (repositories with files at commits, pull requests, comments, reviews, statuses, users and
// permissions), serves the REST endpoints kubeplan calls in each forge's own shapes, so the real
// go-github and go-gitlab clients run against it unmodified, and sends signed webhooks built
// from that state. Endpoints it does not know answer with the forge's own 404.
package forgeemu

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubeplan/kubeplan/forge"
)

// Emulator is both forges behind one HTTP server: GitHub under /api/v3, GitLab under /api/v4.
type Emulator struct {
	mu     sync.Mutex
	repos  map[string]*Repo
	users  map[string]int64
	nextID int64
	// teams are GitHub teams ("org/slug") and GitLab groups (full path), one namespace for
	// both: team → members.
	teams map[string]map[string]bool
	// groups gives GitLab groups (and GitHub teams) their ids: full path → id.
	groups map[string]int64
	// Token is the credential API calls must present.
	Token string
	// BotLogin is who kubeplan's comments are attributed to.
	BotLogin string
	faults   []fault
	app      *githubApp
	srv      *httptest.Server
	// codeload serves GitHub's archives on a host of its own, as codeload.github.com does,
	// to links that carry a temporary token (archiveTokens) in their query.
	codeload      *httptest.Server
	archiveTokens map[string]bool
	now           func() time.Time
	// TokenScopes, when set, are the scopes of Token as a classic GitHub token (the
	// X-OAuth-Scopes header) and a GitLab personal access token (GitLab's default: api).
	TokenScopes []string
	// manifests and manifestCodes are the App manifest flow's (manifest.go).
	manifests     []AppManifest
	manifestCodes map[string]*manifestCode
	// revoked repositories answer 404 to kubeplan's credentials (RevokeAccess).
	revoked map[string]bool
	// held counts the requests HoldRequests is holding.
	held int
	// writes counts the requests that could change state (Writes).
	writes int
	// The OAuth web flows (oauth.go): registered applications ("github:<client id>"), codes
	// not yet exchanged, the user tokens and refresh tokens issued, who is signed in to the
	// forge in a browser without a cookie saying otherwise, and people's display names.
	oauthApps     map[string]*OAuthApp
	oauthCodes    map[string]*oauthCode
	userTokens    map[string]*userToken
	refreshTokens map[string]*userToken // → what a refresh mints (its expiry unused)
	browserUser   string
	userNames     map[string]string
}

// A fault changes how the next count requests matching method and path are answered.
type fault struct {
	kind         faultKind
	status       int
	to           string // faultRedirect: where to
	count        int
	method, path string        // empty: any request
	hold         chan struct{} // faultHold: closed on release
}

type faultKind int

const (
	faultAnswer        faultKind = iota // answer status instead of handling the request
	faultAfterHandling                  // handle the request (its effects stay), then answer status
	faultRedirect                       // redirect to another server
	faultDrop                           // close the connection without answering
	faultHold                           // wait until released, then handle the request
)

// Repo is a repository with its commits and pull requests.
type Repo struct {
	ID       int64
	FullName string // owner/name or group/project
	Default  string
	// head is the default branch's commit.
	head    string
	commits map[string]map[string]string // sha → path → content
	PRs     map[int]*PR
	// Issues are the repository's issues (issues.go), numbered with the pull requests.
	Issues map[int]*Issue
	// Permissions are users' access (GitHub words; GitLab access levels map onto them).
	Permissions map[string]forge.Permission
	// queue is GitHub's merge queue of the default branch: the queued pull requests, in order.
	queue []int
}

// PR is a pull request (merge request on GitLab).
type PR struct {
	Number           int
	ID               int64
	Title, Author    string
	HeadRef, BaseRef string
	HeadSHA, BaseSHA string
	Draft            bool
	State            string // open, closed
	// Mergeable is whether the head merges cleanly into the base; nil while "the forge is
	// still computing it". New pull requests are mergeable.
	Mergeable *bool
	// DetailedMergeStatus, when set, overrides the detailed_merge_status GitLab reports
	// (e.g. "ci_still_running", "not_approved"); empty derives it from the state.
	DetailedMergeStatus string
	Merged              bool
	MergeCommitSHA      string
	// Group is the merge group the pull request is queued in (GitHub's merge queue), if any.
	Group              *MergeGroup
	MergedBy           string
	MergedAt, ClosedAt time.Time
	Comments           []*Comment
	Reviews            []*Review
	Statuses           map[string][]forge.Status // sha → statuses in order set
	Created            time.Time
}

// Comment is a PR comment (GitLab note).
type Comment struct {
	ID        int64
	Author    string
	Body      string
	Reactions []string
	Created   time.Time
	Updated   time.Time
	// Edited is set once its author changed the body (EditComment); webhooks built from it
	// then speak of an edit.
	Edited bool
}

// Review is an approval or review. On GitLab an approval is an APPROVED review and a
// withdrawn approval a DISMISSED one.
type Review struct {
	ID        int64
	Author    string
	State     string // APPROVED, CHANGES_REQUESTED, DISMISSED, COMMENTED (as GitHub's REST API says)
	Body      string
	CommitSHA string // the pull request's head when the review was given
	Submitted time.Time
}

// New starts an emulator on loopback; Close stops it.
func New(token, botLogin string) *Emulator {
	e := &Emulator{repos: map[string]*Repo{}, users: map[string]int64{}, teams: map[string]map[string]bool{}, groups: map[string]int64{},
		nextID: 1000, Token: token, BotLogin: botLogin, archiveTokens: map[string]bool{}, now: time.Now,
		manifestCodes: map[string]*manifestCode{}, revoked: map[string]bool{},
		oauthApps: map[string]*OAuthApp{}, oauthCodes: map[string]*oauthCode{}, userTokens: map[string]*userToken{},
		refreshTokens: map[string]*userToken{}, userNames: map[string]string{}}
	mux := http.NewServeMux()
	mux.Handle("/api/v3/", http.StripPrefix("/api/v3", e.githubAPI()))
	mux.Handle("/api/v4/", http.StripPrefix("/api/v4", e.gitlabAPI()))
	// GitHub's web pages of the App manifest flow (the API is under /api/v3, as on Enterprise).
	mux.HandleFunc("POST /settings/apps/new", e.newAppFromManifest)
	mux.HandleFunc("POST /organizations/{org}/settings/apps/new", e.newAppFromManifest)
	// Both forges' web sign-in (OAuth) endpoints.
	e.oauthRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	})
	e.srv = httptest.NewServer(e.withFaults(mux))
	e.codeload = httptest.NewServer(e.withFaults(e.githubCodeload()))
	return e
}

// URL is the emulator's root URL.
func (e *Emulator) URL() string { return e.srv.URL }

// GitHubAPI is the base URL to give go-github (Enterprise Server style).
func (e *Emulator) GitHubAPI() string { return e.srv.URL + "/api/v3/" }

// GitLabAPI is the base URL to give go-gitlab.
func (e *Emulator) GitLabAPI() string { return e.srv.URL + "/api/v4" }

// CodeloadURL is the root of the host GitHub archives are downloaded from.
func (e *Emulator) CodeloadURL() string { return e.codeload.URL }

// ArchiveTokens lists the temporary tokens GitHub's archive links carried so far.
func (e *Emulator) ArchiveTokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.archiveTokens))
	for t := range e.archiveTokens {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Close stops the servers.
func (e *Emulator) Close() {
	e.srv.Close()
	e.codeload.Close()
}

// FailNext makes the next n API requests answer status (a forge outage), then recover.
func (e *Emulator) FailNext(n, status int) { e.FailRequests("", "", n, status) }

// FailRequests makes the next n requests with this method whose path contains path answer
// status; empty method or path match any.
func (e *Emulator) FailRequests(method, path string, n, status int) {
	e.addFault(fault{kind: faultAnswer, status: status, count: n, method: method, path: path})
}

// FailAfterHandling makes the next n matching requests do what they ask (a comment is
// created) and then answer status, as a forge whose database committed before a proxy or a
// worker failed the answer.
func (e *Emulator) FailAfterHandling(method, path string, n, status int) {
	e.addFault(fault{kind: faultAfterHandling, status: status, count: n, method: method, path: path})
}

// RedirectRequests makes the next n matching requests answer a redirect (302 for GET, 307
// otherwise) to the same path and query on the server at to (e.g. a test's recorder on
// another host).
func (e *Emulator) RedirectRequests(method, path string, n int, to string) {
	e.addFault(fault{kind: faultRedirect, to: strings.TrimSuffix(to, "/"), count: n, method: method, path: path})
}

// DropConnections makes the next n matching requests end with the connection closed and no
// answer, as a reset from a proxy does.
func (e *Emulator) DropConnections(method, path string, n int) {
	e.addFault(fault{kind: faultDrop, count: n, method: method, path: path})
}

// HoldRequests makes every matching request wait, unanswered, until release is called (or the
// client gives up): a forge slow to answer, to catch kubeplan in the middle of a job. Held says
// how many are waiting.
func (e *Emulator) HoldRequests(method, path string) (release func()) {
	f := fault{kind: faultHold, count: 1, method: method, path: path, hold: make(chan struct{})}
	e.addFault(f)
	var once sync.Once
	return func() {
		once.Do(func() {
			e.mu.Lock()
			for i := range e.faults {
				if e.faults[i].hold == f.hold {
					e.faults = append(e.faults[:i], e.faults[i+1:]...)
					break
				}
			}
			e.mu.Unlock()
			close(f.hold)
		})
	}
}

// Held says how many requests HoldRequests is holding now.
func (e *Emulator) Held() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.held
}

func (e *Emulator) addFault(f fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, f)
}

func (e *Emulator) withFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			e.writes++
		}
		var f *fault
		for i := range e.faults {
			if m := e.faults[i]; (m.method == "" || m.method == r.Method) && strings.Contains(r.URL.Path, m.path) {
				matched := m
				f = &matched
				if m.kind == faultHold {
					e.held++
					break
				}
				if e.faults[i].count--; e.faults[i].count <= 0 {
					e.faults = append(e.faults[:i], e.faults[i+1:]...)
				}
				break
			}
		}
		e.mu.Unlock()
		switch {
		case f == nil:
			next.ServeHTTP(w, r)
		case f.kind == faultHold:
			select {
			case <-f.hold:
			case <-r.Context().Done():
			}
			e.mu.Lock()
			e.held--
			e.mu.Unlock()
			if r.Context().Err() == nil {
				next.ServeHTTP(w, r)
			}
		case f.kind == faultAfterHandling:
			next.ServeHTTP(httptest.NewRecorder(), r)
			writeJSON(w, f.status, map[string]string{"message": "Server Error"})
		case f.kind == faultRedirect:
			status := http.StatusFound // as GitHub answers for archives
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				status = http.StatusTemporaryRedirect // keeps the method and body
			}
			http.Redirect(w, r, f.to+r.URL.RequestURI(), status)
		case f.kind == faultDrop:
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		default:
			writeJSON(w, f.status, map[string]string{"message": "Server Error"})
		}
	})
}

func (e *Emulator) id() int64 {
	e.nextID++
	return e.nextID
}

func (e *Emulator) userID(login string) int64 {
	if id, ok := e.users[login]; ok {
		return id
	}
	id := e.id()
	e.users[login] = id
	return id
}

// CreateRepo adds a repository whose default branch holds files; it returns the commit sha.
func (e *Emulator) CreateRepo(fullName string, files map[string]string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &Repo{ID: e.id(), FullName: fullName, Default: "main", commits: map[string]map[string]string{}, PRs: map[int]*PR{}, Permissions: map[string]forge.Permission{}}
	e.repos[fullName] = r
	if i := strings.LastIndex(fullName, "/"); i > 0 {
		e.group(fullName[:i]) // a GitLab project's namespace is a group
	}
	r.head = r.commit(files)
	return r.head
}

// SetPermission gives a user a permission on a repository.
func (e *Emulator) SetPermission(repo, user string, p forge.Permission) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.repos[repo].Permissions[user] = p
	e.userID(user)
}

// commit stores a snapshot and returns its sha (content-addressed, like git).
func (r *Repo) commit(files map[string]string) string { return r.mergeCommit(files) }

// OpenPR opens a pull request from a branch whose tree is the base tree with changes applied
// (a "" content deletes the file). It returns the PR number.
func (e *Emulator) OpenPR(repo, author, title, baseSHA string, changes map[string]string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repos[repo]
	head := r.commit(applyChanges(r.commits[baseSHA], changes))
	n := r.nextNumber()
	r.PRs[n] = &PR{Number: n, ID: e.id(), Title: title, Author: author, HeadRef: fmt.Sprintf("change-%d", n), BaseRef: r.Default,
		HeadSHA: head, BaseSHA: baseSHA, State: "open", Mergeable: Bool(true), Statuses: map[string][]forge.Status{}, Created: e.now()}
	e.userID(author)
	return n
}

// Push adds changes to a PR's branch and returns the new head sha.
func (e *Emulator) Push(repo string, number int, changes map[string]string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repos[repo]
	pr := r.PRs[number]
	pr.HeadSHA = r.commit(applyChanges(r.commits[pr.HeadSHA], changes))
	return pr.HeadSHA
}

func applyChanges(base, changes map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(changes))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range changes {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// AddComment adds a comment by a user (not the bot) and returns it.
func (e *Emulator) AddComment(repo string, number int, author, body string) *Comment {
	e.mu.Lock()
	defer e.mu.Unlock()
	pr := e.repos[repo].PRs[number]
	c := &Comment{ID: e.id(), Author: author, Body: body, Created: e.now(), Updated: e.now()}
	pr.Comments = append(pr.Comments, c)
	e.userID(author)
	return c
}

// EditComment changes a comment's body as its author would, and returns it.
func (e *Emulator) EditComment(repo string, number int, id int64, body string) *Comment {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.repos[repo].PRs[number].Comments {
		if c.ID == id {
			c.Body, c.Updated, c.Edited = body, e.now(), true
			return c
		}
	}
	return nil
}

// PRState returns a copy of a pull request's state for assertions.
func (e *Emulator) PRState(repo string, number int) PR {
	e.mu.Lock()
	defer e.mu.Unlock()
	pr := *e.repos[repo].PRs[number]
	pr.Comments = append([]*Comment(nil), pr.Comments...)
	for i, c := range pr.Comments {
		cc := *c
		pr.Comments[i] = &cc
	}
	pr.Reviews = append([]*Review(nil), pr.Reviews...)
	for i, rv := range pr.Reviews {
		rr := *rv
		pr.Reviews[i] = &rr
	}
	if pr.Mergeable != nil {
		pr.Mergeable = Bool(*pr.Mergeable)
	}
	if pr.Group != nil {
		g := *pr.Group
		pr.Group = &g
	}
	pr.Statuses = map[string][]forge.Status{}
	for k, v := range e.repos[repo].PRs[number].Statuses {
		pr.Statuses[k] = append([]forge.Status(nil), v...)
	}
	return pr
}

// LatestStatus returns the last status set for a context on a commit.
func (pr PR) LatestStatus(sha, context string) (forge.Status, bool) {
	list := pr.Statuses[sha]
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Context == context {
			return list[i], true
		}
	}
	return forge.Status{}, false
}

// changedFiles lists the paths that differ between a PR's base and head.
func (r *Repo) changedFiles(pr *PR) []string {
	base, head := r.commits[pr.BaseSHA], r.commits[pr.HeadSHA]
	var out []string
	for p, v := range head {
		if base[p] != v {
			out = append(out, p)
		}
	}
	for p := range base {
		if _, ok := head[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (e *Emulator) repo(name string) *Repo { return e.repos[name] }

// SetDraft marks a pull request draft or ready for review.
func (e *Emulator) SetDraft(repo string, number int, draft bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.repos[repo].PRs[number].Draft = draft
}
