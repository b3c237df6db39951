// Command webhookload measures how fast `kubeplan serve` acknowledges webhooks while it plans:
// a steady open-loop load of signed pull_request webhooks (default 200/s) from this process to
// a kubeplan process on loopback, whose workers plan pull requests against a real apiserver
// and the forge emulator meanwhile. It prints latency percentiles and how many plans ran.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/forgeemu"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/internal/servetest"
)

const (
	token  = "bench-token"
	secret = "bench-secret"
	repo   = "acme/bench"
)

func main() {
	fs := flag.NewFlagSet("webhookload", flag.ExitOnError)
	rate := fs.Int("rate", 200, "webhooks per second")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	prs := fs.Int("prs", 20, "pull requests the webhooks are about (each plan is real work)")
	objects := fs.Int("objects", 40, "objects per pull request's project")
	bin := fs.String("kubeplan", "bin/kubeplan", "kubeplan binary")
	_ = fs.Parse(os.Args[1:])
	if err := run(*rate, *duration, *prs, *objects, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "webhookload:", err)
		os.Exit(1)
	}
}

func run(rate int, duration time.Duration, prs, objects int, bin string) error {
	kc, err := kubetest.Start("bench")
	if err != nil {
		return err
	}
	defer kc.Stop()
	if _, err := kc.Kubectl(context.Background(), "", "create", "namespace", "bench"); err != nil {
		return err
	}
	emu := forgeemu.New(token, "kubeplan[bot]")
	defer emu.Close()
	files := map[string]string{".kubeplan.yaml": "projects:\n- {name: app, dir: app, namespace: bench}\n"}
	for i := 0; i < objects; i++ {
		files[fmt.Sprintf("app/cm-%03d.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%03d}\ndata: {v: \"0\"}\n", i)
	}
	base := emu.CreateRepo(repo, files)
	var numbers []int
	for i := 0; i < prs; i++ {
		numbers = append(numbers, emu.OpenPR(repo, "alice", fmt.Sprint("change ", i), base,
			map[string]string{"app/cm-000.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-000}\ndata: {v: \"%d\"}\n", i+1)}))
	}

	work, err := os.MkdirTemp("", "kubeplan-webhookload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cfg := fmt.Sprintf("workDir: %s\nworkers: 2\ngithub:\n  baseURL: %s\nclusters:\n- {name: bench, kubeconfig: %s, context: bench}\n", work, emu.GitHubAPI(), kc.Kubeconfig)
	serve, err := servetest.Start(bin, work, cfg, "KUBEPLAN_GITHUB_TOKEN="+token, "KUBEPLAN_GITHUB_WEBHOOK_SECRET="+secret)
	if err != nil {
		return err
	}
	defer serve.Stop()
	url := serve.URL

	// Pre-built, pre-signed bodies: the load generator's own cost stays out of the figures.
	type webhook struct {
		body []byte
		sig  string
	}
	var hooks []webhook
	for _, n := range numbers {
		body, _ := json.Marshal(emu.GitHubPullRequestEvent(repo, n, "synchronize", "alice"))
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		hooks = append(hooks, webhook{body, "sha256=" + hex.EncodeToString(m.Sum(nil))})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	total := int(duration.Seconds() * float64(rate))
	latencies := make([]time.Duration, total)
	codes := make([]int, total)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	before := readCPU(serve.Pid())
	start := time.Now()
	for i := 0; i < total; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval))) // open loop: the schedule does not wait for answers
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hooks[i%len(hooks)]
			req, _ := http.NewRequest(http.MethodPost, url+"/webhooks/github", bytes.NewReader(h.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "pull_request")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("load-%d", i))
			req.Header.Set("X-Hub-Signature-256", h.sig)
			t0 := time.Now()
			resp, err := client.Do(req)
			latencies[i] = time.Since(t0)
			if err != nil {
				codes[i] = -1
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := readCPU(serve.Pid())

	accepted, failed := 0, 0
	for _, c := range codes {
		if c == http.StatusAccepted {
			accepted++
		} else {
			failed++
		}
	}
	plans := 0
	for _, n := range numbers {
		pr := emu.PRState(repo, n)
		for _, st := range pr.Statuses[pr.HeadSHA] {
			if st.Context == "kubeplan/plan" && st.State != forge.Pending {
				plans++
			}
		}
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	fmt.Printf("webhook acknowledgement: %d signed pull_request webhooks at %d/s over %s to kubeplan serve (separate process, loopback),\n",
		total, rate, elapsed.Round(time.Millisecond))
	fmt.Printf("%d pull requests × %d objects being planned meanwhile (%d plans finished during the run)\n\n", prs, objects, plans)
	fmt.Printf("  %-8s %-8s %-8s %-8s %-8s   %s\n", "p50", "p90", "p99", "max", "mean", "answers")
	var sum time.Duration
	for _, l := range latencies {
		sum += l
	}
	fmt.Printf("  %-8s %-8s %-8s %-8s %-8s   %d × 202, %d other\n", ms(pct(0.50)), ms(pct(0.90)), ms(pct(0.99)), ms(latencies[len(latencies)-1]),
		ms(sum/time.Duration(len(latencies))), accepted, failed)
	fmt.Printf("\n  target: p99 under 20 ms — %s\n", map[bool]string{true: "met", false: "NOT met"}[pct(0.99) < 20*time.Millisecond])
	if inside, err := serverSide(url); err == nil {
		fmt.Printf("  inside kubeplan (its own histogram, request read to answer written): %s\n", inside)
	}
	fmt.Printf("  where the CPU went (the machine has %d cores): %s\n", runtime.NumCPU(), after.sub(before).String(elapsed))
	if failed > 0 {
		return fmt.Errorf("%d webhooks were not accepted\n%s", failed, serve.Logs(20))
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// serverSide summarises kubeplan's own webhook latency histogram, to tell time spent inside the
// handler from time spent waiting for a CPU or on the wire.
func serverSide(url string) (string, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	counts := map[string]float64{}
	var total float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, `kubeplan_webhook_duration_seconds_bucket{forge="github",le="`) {
			continue
		}
		rest := strings.TrimPrefix(line, `kubeplan_webhook_duration_seconds_bucket{forge="github",le="`)
		le, value, _ := strings.Cut(rest, `"} `)
		v, _ := strconv.ParseFloat(value, 64)
		counts[le] = v
		if le == "+Inf" {
			total = v
		}
	}
	if total == 0 {
		return "", fmt.Errorf("no histogram")
	}
	var parts []string
	for _, b := range []struct{ le, ms string }{{"0.002", "2"}, {"0.005", "5"}, {"0.01", "10"}, {"0.02", "20"}} {
		parts = append(parts, fmt.Sprintf("%.1f%% under %s ms", 100*counts[b.le]/total, b.ms))
	}
	return strings.Join(parts, ", "), nil
}

// cpu is what /proc says of the machine and of kubeplan serve at one moment: CPU time used
// (clock ticks) by everyone, by kubeplan, by this process (the load generator and the forge
// emulator), and how long kubeplan's threads waited on a run queue for a core. Zero where
// /proc is not readable (not Linux): the line then says nothing was measured.
type cpu struct {
	machine, kubeplan, self uint64        // ticks of user + system time
	kubeplanWait            time.Duration // run-queue wait of kubeplan's threads
	ok                      bool
}

func readCPU(pid int) cpu {
	var c cpu
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c
	}
	// "cpu  user nice system idle iowait irq softirq steal ...": busy is all but idle and iowait.
	line, _, _ := strings.Cut(string(stat), "\n")
	for i, f := range strings.Fields(line)[1:] {
		if v, err := strconv.ParseUint(f, 10, 64); err == nil && i != 3 && i != 4 && i < 8 {
			c.machine += v
		}
	}
	c.kubeplan = processTicks(fmt.Sprintf("/proc/%d/stat", pid))
	c.self = processTicks("/proc/self/stat")
	// /proc/PID/task/TID/schedstat: time on a CPU, time waiting on a run queue (ns), slices.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, t := range tasks {
		if b, err := os.ReadFile(t); err == nil {
			if f := strings.Fields(string(b)); len(f) >= 2 {
				if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					c.kubeplanWait += time.Duration(v)
				}
			}
		}
	}
	c.ok = c.machine > 0 && c.kubeplan > 0
	return c
}

// processTicks is a process's user + system time from its /proc stat line (fields 14 and 15,
// counted after the command name, which may hold spaces).
func processTicks(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return u + s
}

func (c cpu) sub(o cpu) cpu {
	return cpu{machine: c.machine - o.machine, kubeplan: c.kubeplan - o.kubeplan, self: c.self - o.self,
		kubeplanWait: c.kubeplanWait - o.kubeplanWait, ok: c.ok && o.ok}
}

// String says how many cores each part used over the run, and how long kubeplan's threads
// were ready to run but had no core (threads that ended during the run are not counted).
func (c cpu) String(over time.Duration) string {
	if !c.ok {
		return "not measured (no /proc)"
	}
	const ticksPerSecond = 100 // USER_HZ, 100 on every Linux kubeplan runs on
	cores := func(ticks uint64) float64 { return float64(ticks) / ticksPerSecond / over.Seconds() }
	others := int64(c.machine) - int64(c.kubeplan) - int64(c.self)
	return fmt.Sprintf("all %.2f cores busy: kubeplan %.2f, load generator + forge emulator %.2f, the rest (apiserver, etcd, neighbours) %.2f; "+
		"kubeplan's threads waited %s for a core (%.0f ms per second)",
		cores(c.machine), cores(c.kubeplan), cores(c.self), cores(uint64(max(others, 0))),
		c.kubeplanWait.Round(time.Millisecond), float64(c.kubeplanWait.Milliseconds())/over.Seconds())
}
