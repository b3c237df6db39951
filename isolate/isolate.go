// Package isolate renders repository content in a child process bounded in time and memory.
//
// A Helm template is a program: `{{ range until 1000000000 }}` or `{{ range 1000000000 }}`
// runs for minutes and allocates gigabytes, and neither Helm's engine nor text/template can be
// stopped from outside. Kustomize is data, but kustomize's build takes no context (it cannot be
// stopped either), holds every copy a kustomization asks for (one file named by a generator
// forty times is forty copies), and fetches any URL a kustomization names with a client that
// has no timeout. Rendered in kubeplan's own process, one such pull request from anyone could
// stall or kill the service, or make it fetch for an attacker. Here each render runs in a child
// — this same program, started with a marker argument — whose memory is capped by the kernel
// (RLIMIT_DATA), which is killed at its deadline or when the plan is cancelled, and which can
// reach no network: its HTTP transport refuses every request and it has no PATH to find git
// on. A failure is that project's render error, nothing more.
package isolate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/render"
)

// childArg makes a process started from this program a render child.
const childArg = "__kubeplan-render-child"

// RunChildIfAsked turns the process into a render child when it was started as one: it
// renders the request on stdin, writes the result on stdout and exits. Call it first in main
// (and in TestMain of tests whose code renders through Renderer).
func RunChildIfAsked() {
	if len(os.Args) < 2 || os.Args[1] != childArg {
		return
	}
	os.Exit(runChild(os.Stdin, os.Stdout))
}

// Limits bound one render.
type Limits struct {
	Timeout     time.Duration
	MemoryBytes int64
}

// DefaultLimits fit the largest real charts with room to spare.
func DefaultLimits() Limits { return Limits{Timeout: 2 * time.Minute, MemoryBytes: 1 << 30} }

// Renderer renders in child processes.
type Renderer struct {
	Limits Limits
	// Program is the executable to start; empty means this program (os.Executable).
	Program string
	// maxAnswer bounds the child's answer; 0 means a quarter of the memory limit (the child's
	// own cap keeps it below about that anyway: this is the backstop).
	maxAnswer int
}

type request struct {
	RepoRoot, Dir string
	Options       render.Options
	MemoryBytes   int64
}

type object struct {
	// Object is decoded on its own, as Kubernetes decodes objects: integers stay int64
	// (encoding/json would make every number a float64, and 1000000 print as 1e+06).
	Object json.RawMessage `json:"object"`
	Source string          `json:"source"`
}

type response struct {
	Renderer render.Renderer `json:"renderer,omitempty"`
	Objects  []object        `json:"objects,omitempty"`
	Notes    []string        `json:"notes,omitempty"`
	// Error is a render error of the input (render.Error); Failure any other error.
	Error   *renderError `json:"error,omitempty"`
	Failure string       `json:"failure,omitempty"`
}

type renderError struct{ File, Reason string }

// Render renders like render.Render: Helm charts and kustomizations in a child process within
// r.Limits, plain YAML in this process. Plain YAML is data read file by file, bounded by
// render's own limits on what it reads and produces (YAML aliases included), and each file is
// quick to decode; a child costs 50–100 ms of CPU to start, which plans of plain manifests
// need not pay.
func (r *Renderer) Render(ctx context.Context, repoRoot, dir string, opts render.Options) (*render.Result, error) {
	kind := r.kind(repoRoot, dir, opts.Renderer)
	if kind != render.Helm && kind != render.Kustomize {
		return render.Render(ctx, repoRoot, dir, opts)
	}
	slow, big := "a template that loops too long?", "a template that produces too much?"
	if kind == render.Kustomize {
		slow, big = "a kustomization that patches too much?", "a kustomization that copies too much?"
	}
	lim := r.Limits
	if lim.Timeout <= 0 {
		lim.Timeout = DefaultLimits().Timeout
	}
	if lim.MemoryBytes <= 0 {
		lim.MemoryBytes = DefaultLimits().MemoryBytes
	}
	program := r.Program
	if program == "" {
		var err error
		if program, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("render %s: find this program to start a render child: %w", dir, err)
		}
	}
	req, err := json.Marshal(request{RepoRoot: repoRoot, Dir: dir, Options: opts, MemoryBytes: lim.MemoryBytes})
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	cctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, program, childArg)
	cmd.Stdin = bytes.NewReader(req)
	// The answer is bounded too: kubeplan holds it, then decodes it, in its own memory.
	stdout := &capped{max: r.maxAnswer, stop: cancel}
	if stdout.max <= 0 {
		stdout.max = int(lim.MemoryBytes / 4)
	}
	stderr := &headTail{max: 4096}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Nothing of kubeplan's environment (forge tokens, webhook secrets, proxies) reaches code
	// that runs untrusted templates; without PATH, no program (git) can be found either.
	cmd.Env = []string{"GOMAXPROCS=2", "TMPDIR=" + os.TempDir()}
	// Once killed, the answer pipe is given up on even if something still held it open.
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case stdout.over:
		return nil, &render.Error{File: dir, Reason: fmt.Sprintf("rendered more than %d KiB of manifests; kubeplan stopped it", stdout.max>>10)}
	case cctx.Err() != nil:
		return nil, &render.Error{File: dir, Reason: fmt.Sprintf("rendering took longer than %s; kubeplan stopped it (%s)", lim.Timeout, slow)}
	case runErr != nil && outOfMemory(stderr.String()):
		return nil, &render.Error{File: dir, Reason: fmt.Sprintf("rendering needed more than %d MiB of memory; kubeplan stopped it (%s)", lim.MemoryBytes>>20, big)}
	case runErr != nil:
		return nil, fmt.Errorf("render %s: the render child failed: %w: %s", dir, runErr, strings.TrimSpace(stderr.String()))
	}
	var resp response
	if err := json.Unmarshal(stdout.buf.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("render %s: read the render child's answer: %w", dir, err)
	}
	if resp.Error != nil {
		return nil, &render.Error{File: resp.Error.File, Reason: resp.Error.Reason}
	}
	if resp.Failure != "" {
		return nil, errors.New(resp.Failure)
	}
	res := &render.Result{Renderer: resp.Renderer, Notes: resp.Notes}
	for _, o := range resp.Objects {
		var obj map[string]any
		if err := utiljson.Unmarshal(o.Object, &obj); err != nil {
			return nil, fmt.Errorf("render %s: read an object of %s from the render child: %w", dir, o.Source, err)
		}
		res.Objects = append(res.Objects, manifest.Object{Unstructured: &unstructured.Unstructured{Object: obj}, Source: o.Source})
	}
	return res, nil
}

// kind says how dir renders, as render.Render would decide.
func (r *Renderer) kind(repoRoot, dir string, chosen render.Renderer) render.Renderer {
	if chosen != "" && chosen != render.Auto {
		return chosen
	}
	root, err := os.OpenRoot(repoRoot)
	if err != nil {
		return render.Helm // a child, which reports it
	}
	defer root.Close()
	return render.Detect(root.FS(), path.Clean(strings.TrimPrefix(dir, "/")))
}

// runChild is the child's whole life: cap its own memory, render, answer.
func runChild(in io.Reader, out io.Writer) int {
	var req request
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "render child: read request:", err)
		return 2
	}
	// The kernel refuses the child's memory beyond this (Go then dies with "out of memory");
	// the soft limit makes the collector work hard before that.
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: uint64(req.MemoryBytes), Max: uint64(req.MemoryBytes)}); err != nil {
		fmt.Fprintln(os.Stderr, "render child: limit memory:", err)
		return 2
	}
	debug.SetMemoryLimit(req.MemoryBytes * 3 / 4)
	cutNetwork()
	var resp response
	res, err := render.Render(context.Background(), req.RepoRoot, req.Dir, req.Options)
	var rerr *render.Error
	switch {
	case errors.As(err, &rerr):
		resp.Error = &renderError{File: rerr.File, Reason: rerr.Reason}
	case err != nil:
		resp.Failure = err.Error()
	default:
		resp.Renderer, resp.Notes = res.Renderer, res.Notes
		for _, o := range res.Objects {
			raw, err := json.Marshal(o.Object)
			if err != nil {
				fmt.Fprintln(os.Stderr, "render child: encode", o.Source+":", err)
				return 2
			}
			resp.Objects = append(resp.Objects, object{Object: raw, Source: o.Source})
		}
	}
	if err := json.NewEncoder(out).Encode(resp); err != nil {
		fmt.Fprintln(os.Stderr, "render child: write answer:", err)
		return 2
	}
	return 0
}

// cutNetwork leaves the child no way to the network through Go's HTTP client or resolver:
// kustomize GETs the URLs a kustomization names with an http.Client of its own, which uses
// http.DefaultTransport. render refuses URLs before a build; this holds for any it missed. (It
// changes process-wide defaults, which the child, rendering once and exiting, alone uses.)
func cutNetwork() {
	http.DefaultTransport = noNetwork{}
	http.DefaultClient.Transport = noNetwork{}
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errNoNetwork
	}}
}

var errNoNetwork = errors.New("kubeplan fetches nothing while rendering")

// noNetwork is the child's HTTP transport: every request fails before any connection.
type noNetwork struct{}

func (noNetwork) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return nil, fmt.Errorf("%w (refused %s)", errNoNetwork, r.URL.Redacted())
}

// outOfMemory reads a dead child's stderr: the Go runtime says "out of memory" when the heap
// cannot grow, and a new thread's stack hitting the same cap fails pthread_create (cgo) or
// mmap first.
func outOfMemory(stderr string) bool {
	for _, sign := range []string{"out of memory", "pthread_create failed", "cannot allocate memory", "failed to create new OS thread"} {
		if strings.Contains(stderr, sign) {
			return true
		}
	}
	return false
}

// capped keeps what is written to it up to max bytes; past that it stops the writer.
type capped struct {
	max  int
	buf  bytes.Buffer
	over bool
	stop func()
}

func (c *capped) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		c.over = true
		c.stop()
		return 0, errors.New("answer too large")
	}
	return c.buf.Write(p)
}

// headTail keeps the first and the last max/2 bytes written to it: a Go runtime failure says
// what it is first, then dumps every goroutine.
type headTail struct {
	max        int
	head, tail []byte
	cut        bool
}

func (h *headTail) Write(p []byte) (int, error) {
	n := len(p)
	if room := h.max/2 - len(h.head); room > 0 {
		k := min(room, len(p))
		h.head, p = append(h.head, p[:k]...), p[k:]
	}
	h.tail = append(h.tail, p...)
	if over := len(h.tail) - h.max/2; over > 0 {
		h.tail, h.cut = h.tail[over:], true
	}
	return n, nil
}

func (h *headTail) String() string {
	if h.cut {
		return string(h.head) + "\n…\n" + string(h.tail)
	}
	return string(h.head) + string(h.tail)
}
