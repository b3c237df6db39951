package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/store"
)

// runMainEnv makes the test binary run kubeplan's main instead of the tests.
const runMainEnv = "KUBEPLAN_TEST_RUN_MAIN"

const (
	emuToken  = "emulator-token"
	emuSecret = "webhook-secret"
	emuBot    = "kubeplan-bot"
)

// process is `kubeplan serve` running as a process of its own.
type process struct {
	url  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// until waits for cond, failing the test after a minute.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveProcess starts this test binary as `kubeplan serve` with the config and waits until healthy.
func serveProcess(t *testing.T, dir, configYAML string) *process {
	t.Helper()
	cfg := filepath.Join(dir, "kubeplan.yaml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], "serve", "--config", cfg, "--listen", addr)
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "KUBEPLAN_GITHUB_TOKEN="+emuToken, "KUBEPLAN_GITHUB_WEBHOOK_SECRET="+emuSecret)
	p := &process{url: "http://" + addr, cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	until(t, "kubeplan serve is healthy", func() bool {
		select {
		case <-p.done:
			t.Fatalf("kubeplan serve exited:\n%s", p.logs)
		default:
		}
		resp, err := http.Get(p.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// terminate sends SIGTERM and returns the exit code once the process has exited.
func (p *process) terminate(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("kubeplan serve did not exit within a minute of SIGTERM:\n%s", p.logs)
	}
	return p.cmd.ProcessState.ExitCode()
}

// scene is a repository whose project web (apps/web, a namespace of its own) runs nginx:1.27,
// and a pull request bumping it, with the configuration serve runs with.
func scene(t *testing.T, grace string) (*forgeemu.Emulator, string, string, string) {
	t.Helper()
	emu := forgeemu.New(emuToken, emuBot)
	t.Cleanup(emu.Close)
	ns := fmt.Sprintf("sigterm-%x", time.Now().UnixNano()&0xffffff)
	kubectl(t, "", "create", "namespace", ns)
	deploy := func(image string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n" +
			"  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: " + image + "}]}\n"
	}
	repo := "acme/" + ns
	base := emu.CreateRepo(repo, map[string]string{".kubeplan.yaml": "version: 1\nprojects:\n- {name: web, dir: apps/web, namespace: " + ns + "}\n",
		"apps/web/deploy.yaml": deploy("nginx:1.27")})
	emu.OpenPR(repo, "alice", "bump", base, map[string]string{"apps/web/deploy.yaml": deploy("nginx:1.28")})
	dir := t.TempDir()
	cfg := fmt.Sprintf(`state: %s
workDir: %s
shutdownGrace: %s
github: {baseURL: %q}
clusters: [{name: test, kubeconfig: %s, context: test}]
`, filepath.Join(dir, "state.db"), filepath.Join(dir, "work"), grace, emu.GitHubAPI(), testCluster.Kubeconfig)
	return emu, repo, dir, cfg
}

func planStatus(emu *forgeemu.Emulator, repo string) forge.Status {
	pr := emu.PRState(repo, 1)
	st, _ := pr.LatestStatus(pr.HeadSHA, "kubeplan/plan")
	return st
}

func pending(t *testing.T, state string) int {
	t.Helper()
	q, err := store.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	n, err := q.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// SIGTERM in the middle of a job, the forge slow to answer past the grace period: serve stops
// taking webhooks, hands the job back, and exits 0; the next serve takes the job up and
// finishes it. Nothing is lost.
func TestSIGTERMMidJobHandsTheJobBackAndTheNextServeFinishesIt(t *testing.T) {
	emu, repo, dir, cfg := scene(t, "1s")
	release := emu.HoldRequests(http.MethodGet, "/repos/"+repo+"/pulls/1")
	defer release()
	first := serveProcess(t, dir, cfg)
	resp, err := forgeemu.SendGitHub(first.url+"/webhooks/github", emuSecret, "pull_request", "sigterm-1", emu.GitHubPullRequestEvent(repo, 1, "opened", "alice"))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %v %v", resp, err)
	}
	resp.Body.Close()
	until(t, "the job waits on the forge", func() bool { return emu.Held() > 0 })

	if code := first.terminate(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0:\n%s", code, first.logs)
	}
	logs := first.logs.String()
	if !strings.Contains(logs, "job handed back to the queue") || !strings.Contains(logs, "shutting down") {
		t.Fatalf("logs do not tell of the hand-back:\n%s", logs)
	}
	if _, err := http.Get(first.url + "/healthz"); err == nil {
		t.Fatal("the stopped serve still answers")
	}
	// The job is queued again, not left running under its lease, and its attempt is not counted:
	// a replica sharing the store could claim it at once.
	q, err := store.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	job, err := q.Claim(context.Background())
	if err != nil || job == nil || job.Attempts != 1 {
		t.Fatalf("after SIGTERM the job is not back in the queue on its first attempt: %+v %v", job, err)
	}
	if err := q.Release(context.Background(), job.ID); err != nil {
		t.Fatal(err)
	}
	q.Close()
	if st := planStatus(emu, repo); st.State == forge.Success || st.State == forge.Failure {
		t.Fatalf("the job finished before SIGTERM: %+v", st)
	}

	release() // the forge answers again
	second := serveProcess(t, dir, cfg)
	until(t, "the second serve finishes the plan", func() bool { return planStatus(emu, repo).State == forge.Success })
	if code := second.terminate(t); code != 0 {
		t.Fatalf("second serve: exit code %d:\n%s", code, second.logs)
	}
	if n := pending(t, filepath.Join(dir, "state.db")); n != 0 {
		t.Fatalf("%d jobs pending after the second serve", n)
	}
	if !strings.Contains(second.logs.String(), "job done") {
		t.Errorf("second serve's logs:\n%s", second.logs)
	}
}

// SIGTERM while a job runs, the forge answering within the grace period: the job finishes in
// the stopping process, which then exits 0 with nothing left in the queue. serve's start-up
// checks are logged.
func TestSIGTERMLetsARunningJobFinishWithinTheGrace(t *testing.T) {
	emu, repo, dir, cfg := scene(t, "1m")
	release := emu.HoldRequests(http.MethodGet, "/repos/"+repo+"/pulls/1")
	defer release()
	p := serveProcess(t, dir, cfg)
	resp, err := forgeemu.SendGitHub(p.url+"/webhooks/github", emuSecret, "pull_request", "grace-1", emu.GitHubPullRequestEvent(repo, 1, "opened", "alice"))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %v %v", resp, err)
	}
	resp.Body.Close()
	until(t, "the job waits on the forge", func() bool { return emu.Held() > 0 })
	until(t, "the start-up checks are logged", func() bool { return strings.Contains(p.logs.String(), "start-up checks done") })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	until(t, "serve stops taking webhooks", func() bool {
		_, err := http.Get(p.url + "/healthz")
		return err != nil
	})
	release()
	if code := p.terminate(t); code != 0 { // already signalled; a second SIGTERM changes nothing
		t.Fatalf("exit code %d:\n%s", code, p.logs)
	}
	if st := planStatus(emu, repo); st.State != forge.Success {
		t.Fatalf("plan status %+v after a graceful stop, want success:\n%s", st, p.logs)
	}
	if n := pending(t, filepath.Join(dir, "state.db")); n != 0 {
		t.Fatalf("%d jobs pending", n)
	}
	logs := p.logs.String()
	for _, want := range []string{`msg="check passed" subject=github result="the token authenticates as kubeplan-bot"`,
		`msg="check passed" subject="cluster test" result="reachable`, `msg="start-up checks done (kubeplan doctor runs them on demand)" failed=0`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}
