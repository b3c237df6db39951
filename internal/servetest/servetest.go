// Package servetest runs `kubeplan serve` as a separate process for the demo and benchmarks,
// the way an operator would: a config file, secrets in the environment, a loopback port.
package servetest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Serve is a running kubeplan serve process.
type Serve struct {
	URL  string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

// Start writes configYAML to dir, starts bin serve with env added, and waits until healthy.
func Start(bin, dir, configYAML string, env ...string) (*Serve, error) {
	cfg := filepath.Join(dir, "kubeplan.yaml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "serve", "--config", cfg, "--listen", addr, "--state", filepath.Join(dir, "state.db"))
	cmd.Env = append(os.Environ(), env...)
	s := &Serve{URL: "http://" + addr, cmd: cmd, logs: &bytes.Buffer{}}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.URL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("kubeplan serve did not become healthy within 20s:\n%s", s.Logs(20))
}

// Logs returns the last n lines the process logged.
func (s *Serve) Logs(n int) string {
	lines := strings.Split(strings.TrimSpace(s.logs.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Pid is the serve process's id, for benchmarks that read its CPU accounting in /proc.
func (s *Serve) Pid() int { return s.cmd.Process.Pid }

// Stop interrupts the process and waits for it.
func (s *Serve) Stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
}
