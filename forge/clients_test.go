package forge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/archive"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/forge/forgehttp"
	ghforge "github.com/kubeplan/kubeplan/forge/github"
	glforge "github.com/kubeplan/kubeplan/forge/gitlab"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
)

// token is the forge credential; distinctive, so that finding it anywhere is unambiguous.
const token = "emu-api-token-7f3a9c51"

// client is what these tests ask of a forge client.
type client interface {
	PullRequest(ctx context.Context, repo string, number int) (*forge.PullRequest, error)
	Archive(ctx context.Context, repo, sha string) (io.ReadCloser, error)
	Comments(ctx context.Context, repo string, number int) ([]forge.Comment, error)
	CreateComment(ctx context.Context, repo string, number int, body string) (int64, error)
	DefaultBranch(ctx context.Context, repo string) (branch, sha string, err error)
}

// forgeCase is one way kubeplan talks to a forge, with the emulator paths of its requests.
type forgeCase struct {
	name string
	// connect makes a client of the forge at api ("" for the emulator's own API root).
	connect                                    func(t *testing.T, emu *forgeemu.Emulator, api string, o forgehttp.Options) client
	api                                        func(emu *forgeemu.Emulator) string
	pullPath, archivePath, commentPath, suffix string
}

var forgeCases = []forgeCase{
	{name: "github token", api: (*forgeemu.Emulator).GitHubAPI, suffix: "/api/v3/",
		pullPath: "/pulls/1", archivePath: "/tarball/", commentPath: "/issues/1/comments",
		connect: func(t *testing.T, emu *forgeemu.Emulator, api string, o forgehttp.Options) client {
			c, err := ghforge.New(ghforge.Config{BaseURL: api, Token: token, HTTP: o}, 0)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	{name: "github app", api: (*forgeemu.Emulator).GitHubAPI, suffix: "/api/v3/",
		pullPath: "/pulls/1", archivePath: "/tarball/", commentPath: "/issues/1/comments",
		connect: func(t *testing.T, emu *forgeemu.Emulator, api string, o forgehttp.Options) client {
			c, err := ghforge.New(ghforge.Config{BaseURL: api, AppID: 4242, PrivateKey: emu.EnableGitHubApp(4242), HTTP: o}, forgeemu.InstallationID)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	{name: "gitlab", api: (*forgeemu.Emulator).GitLabAPI, suffix: "/api/v4",
		pullPath: "/merge_requests/1", archivePath: "/repository/archive", commentPath: "/merge_requests/1/notes",
		connect: func(t *testing.T, emu *forgeemu.Emulator, api string, o forgehttp.Options) client {
			c, err := glforge.New(glforge.Config{BaseURL: api, Token: token, HTTP: o})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
}

const repo = "acme/platform"

// emulator has one pull request (number 1) in repo.
func emulator(t *testing.T) (*forgeemu.Emulator, string) {
	t.Helper()
	emu := forgeemu.New(token, "kubeplan[bot]")
	t.Cleanup(emu.Close)
	base := emu.CreateRepo(repo, map[string]string{"a.yaml": "a: 1\n"})
	emu.OpenPR(repo, "alice", "change", base, map[string]string{"a.yaml": "a: 2\n"})
	return emu, emu.PRState(repo, 1).HeadSHA
}

// recorder is another host: it records what it was sent and answers 404.
type recorder struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Clone(context.Background()))
		r.mu.Unlock()
		http.NotFound(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// credentials lists the credentials the recorder was sent.
func (r *recorder) credentials() (seen []string, requests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.requests {
		for name, values := range req.Header {
			for _, v := range values {
				lower := strings.ToLower(name)
				if strings.Contains(v, token) || lower == "authorization" || lower == "private-token" || lower == "job-token" {
					seen = append(seen, name+": "+v)
				}
			}
		}
	}
	return seen, len(r.requests)
}

// A forge (or whoever answers in its name) that redirects an API call or an archive download
// to another host gets no credential there: not the token, not a GitHub App's installation
// token or JWT. Requests to the forge's own host keep them (every other test relies on it).
func TestCredentialsNeverLeaveTheForgesHost(t *testing.T) {
	for _, fc := range forgeCases {
		for _, call := range []struct {
			name, path string
			do         func(c client, sha string) error
		}{
			{"API call", fc.pullPath, func(c client, _ string) error { _, err := c.PullRequest(context.Background(), repo, 1); return err }},
			{"archive", fc.archivePath, func(c client, sha string) error {
				body, err := c.Archive(context.Background(), repo, sha)
				if err == nil {
					body.Close()
				}
				return err
			}},
		} {
			t.Run(fc.name+"/"+call.name, func(t *testing.T) {
				emu, sha := emulator(t)
				other := newRecorder(t)
				c := fc.connect(t, emu, fc.api(emu), forgehttp.Options{Attempts: 1})
				emu.RedirectRequests(http.MethodGet, call.path, 1, other.URL)
				_ = call.do(c, sha) // the other host answers 404: the call fails, what matters is what it was sent
				seen, n := other.credentials()
				if n == 0 {
					t.Fatal("the redirect was not followed: the test proves nothing")
				}
				if len(seen) > 0 {
					t.Fatalf("another host was sent kubeplan's credentials: %q", seen)
				}
			})
		}
	}
}

// GitHub's archive link points at another host (codeload) with a temporary token in its query.
// Whatever goes wrong with the download, that token is in no error (which ends up in the job
// record, the log and a commit status) and in no log line.
func TestArchiveLinkTokenIsInNoErrorAndNoLog(t *testing.T) {
	emu, sha := emulator(t)
	var logs bytes.Buffer
	o := forgehttp.Options{Attempts: 2, Backoff: time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	c := forgeCases[0].connect(t, emu, emu.GitHubAPI(), o)
	emu.DropConnections(http.MethodGet, "/legacy.tar.gz/", 2) // codeload resets every attempt
	cache := archive.NewCache(t.TempDir(), 1<<20)
	_, err := cache.Checkout(context.Background(), repo, sha, func(ctx context.Context) (io.ReadCloser, error) {
		return c.Archive(ctx, repo, sha)
	})
	if err == nil {
		t.Fatal("the download succeeded although codeload reset every connection")
	}
	tokens := emu.ArchiveTokens()
	if len(tokens) == 0 {
		t.Fatal("GitHub handed out no archive link: the test proves nothing")
	}
	var ue *url.Error
	errors.As(err, &ue)
	for _, tok := range tokens {
		if strings.Contains(err.Error(), tok) || ue != nil && strings.Contains(ue.URL, tok) {
			t.Errorf("the archive token is in the error: %v", err)
		}
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the archive token is in the log:\n%s", logs.String())
		}
	}
	codeload, _ := url.Parse(emu.CodeloadURL())
	if !strings.Contains(err.Error(), "download "+repo+"@"+sha) || !strings.Contains(err.Error(), codeload.Host) {
		t.Errorf("the error does not say what failed where: %v", err)
	}
}

// A forge that accepts connections and never answers fails the call within the configured
// timeout (and its retries), with an error that says so, instead of holding a worker for ever.
func TestAForgeThatNeverAnswersFailsTheCallInBoundedTime(t *testing.T) {
	silent := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-silent:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(silent) })
	for _, fc := range forgeCases {
		t.Run(fc.name, func(t *testing.T) {
			emu, _ := emulator(t) // only for the App's key
			const timeout = 300 * time.Millisecond
			c := fc.connect(t, emu, hanging.URL+fc.suffix, forgehttp.Options{Timeout: timeout, Attempts: 2, Backoff: 10 * time.Millisecond})
			start := time.Now()
			done := make(chan error, 1)
			go func() { _, err := c.PullRequest(context.Background(), repo, 1); done <- err }()
			select {
			case err := <-done:
				took := time.Since(start)
				if err == nil || !strings.Contains(err.Error(), "the forge did not answer within 300ms") {
					t.Fatalf("after %s: %v, want an error saying the forge did not answer", took, err)
				}
				if took > 20*time.Second {
					t.Fatalf("the call took %s", took)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the call is still waiting for a forge that never answers")
			}
		})
	}
}

// A comment the forge stored but answered 5xx for is not posted again: kubeplan finds it by
// its hidden marker. One the forge did not store is posted again; a refused one (4xx) is not.
// Either way the comment reads as kubeplan wrote it.
func TestACommentIsPostedOnceWhateverTheForgeAnswers(t *testing.T) {
	const body = "kubeplan applied `web` on `prod`."
	for _, fc := range forgeCases {
		for _, c := range []struct {
			name     string
			fault    func(emu *forgeemu.Emulator, path string)
			comments int
			fails    bool
		}{
			{"stored, then 502", func(emu *forgeemu.Emulator, path string) {
				emu.FailAfterHandling(http.MethodPost, path, 1, http.StatusBadGateway)
			}, 1, false},
			{"not stored, 502", func(emu *forgeemu.Emulator, path string) {
				emu.FailRequests(http.MethodPost, path, 1, http.StatusBadGateway)
			}, 1, false},
			{"refused, 422", func(emu *forgeemu.Emulator, path string) {
				emu.FailRequests(http.MethodPost, path, 1, http.StatusUnprocessableEntity)
			}, 0, true},
		} {
			t.Run(fc.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				emu, _ := emulator(t)
				cl := fc.connect(t, emu, fc.api(emu), forgehttp.Options{})
				c.fault(emu, fc.commentPath)
				id, err := cl.CreateComment(context.Background(), repo, 1, body)
				if (err != nil) != c.fails {
					t.Fatalf("CreateComment: %v, want failure %v", err, c.fails)
				}
				stored := emu.PRState(repo, 1).Comments
				if len(stored) != c.comments {
					t.Fatalf("the forge holds %d comments, want %d", len(stored), c.comments)
				}
				if c.comments == 0 {
					return
				}
				if stored[0].ID != id {
					t.Errorf("CreateComment returned %d, the comment is %d", id, stored[0].ID)
				}
				read, err := cl.Comments(context.Background(), repo, 1)
				if err != nil || len(read) != 1 || read[0].Body != body {
					t.Fatalf("read back %+v %v, want the body as written", read, err)
				}
			})
		}
	}
}

func TestPostMarkerIsStrippedOnlyWhenItIsOne(t *testing.T) {
	for in, want := range map[string]string{
		"plan\n\n<!-- kubeplan:post 0123456789abcdef -->": "plan",
		"plan\n\n<!-- kubeplan:post 0123456789abcdeX -->": "plan\n\n<!-- kubeplan:post 0123456789abcdeX -->",
		"plan\n\n<!-- kubeplan:post 0123 -->":             "plan\n\n<!-- kubeplan:post 0123 -->",
		"<!-- kubeplan:plan part=1/1 -->\nplan":           "<!-- kubeplan:plan part=1/1 -->\nplan",
	} {
		if got := forge.StripPostMarker(in); got != want {
			t.Errorf("StripPostMarker(%q) = %q, want %q", in, got, want)
		}
	}
	if got := len(fmt.Sprintf("\n\n<!-- kubeplan:post %016x -->", 1)); got != forge.PostMarkerLen {
		t.Errorf("PostMarkerLen %d, a marker is %d", forge.PostMarkerLen, got)
	}
}

// The default branch and its head, as a scheduled drift check reads them, follow pushes to it.
func TestDefaultBranchHeadFollowsPushes(t *testing.T) {
	for _, fc := range forgeCases {
		t.Run(fc.name, func(t *testing.T) {
			emu, _ := emulator(t)
			c := fc.connect(t, emu, fc.api(emu), forgehttp.Options{})
			for i := range 2 {
				want := emu.DefaultHead(repo)
				if i == 1 {
					want = emu.PushDefault(repo, map[string]string{"b.yaml": "b: 1\n"})
				}
				branch, sha, err := c.DefaultBranch(context.Background(), repo)
				if err != nil || branch != "main" || sha != want {
					t.Fatalf("DefaultBranch = %q %q %v; want main at %s", branch, sha, err, want)
				}
			}
		})
	}
}

// A scheduled check has no webhook naming the App's installation: it is looked up by repository.
func TestInstallationOfRepository(t *testing.T) {
	emu, _ := emulator(t)
	key := emu.EnableGitHubApp(4242)
	emu.InstallApp(repo)
	id, err := ghforge.Installation(context.Background(), ghforge.Config{BaseURL: emu.GitHubAPI(), AppID: 4242, PrivateKey: key}, repo)
	if err != nil || id != forgeemu.InstallationID {
		t.Fatalf("Installation = %d, %v; want %d", id, err, forgeemu.InstallationID)
	}
	if id, err := ghforge.Installation(context.Background(), ghforge.Config{BaseURL: emu.GitHubAPI(), Token: token}, repo); err != nil || id != 0 {
		t.Fatalf("with a token: %d, %v; want 0", id, err)
	}
}
