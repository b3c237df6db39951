package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/internal/forgeemu"
)

// An operator checks an installation: every problem is a line naming it and the fix, and the
// exit code says whether anything failed.
func TestDoctorCommand(t *testing.T) {
	emu := forgeemu.New(emuToken, emuBot)
	defer emu.Close()
	emu.CreateRepo("acme/web", map[string]string{"a": "b"})
	t.Setenv("KUBEPLAN_GITHUB_TOKEN", emuToken)
	t.Setenv("KUBEPLAN_GITHUB_WEBHOOK_SECRET", emuSecret)
	dir := t.TempDir()
	raw, err := os.ReadFile(testCluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "gone.kubeconfig")
	if err := os.WriteFile(gone, []byte(strings.Replace(string(raw), strings.TrimSuffix(testCluster.Config.Host, "/"), "https://127.0.0.1:1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(clusters string) string {
		path := filepath.Join(dir, "kubeplan.yaml")
		cfg := fmt.Sprintf("github: {baseURL: %q}\nrepositories: [acme/web]\nclusters:\n%s", emu.GitHubAPI(), clusters)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	state := filepath.Join(dir, "state.db")

	cfg := write(fmt.Sprintf("- {name: test, kubeconfig: %s, context: test}\n", testCluster.Kubeconfig))
	code, out, errOut := kubeplan("doctor", "--config", cfg, "--state", state)
	if code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("a working installation: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"ok    github: the token authenticates as kubeplan-bot", "ok    github: kubeplan-bot may write to acme/web",
		"ok    cluster test: reachable", "ok    state:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	cfg = write(fmt.Sprintf("- {name: test, kubeconfig: %s, context: test}\n- {name: gone, kubeconfig: %s, context: test}\n", testCluster.Kubeconfig, gone))
	code, out, errOut = kubeplan("doctor", "--config", cfg, "--state", state)
	if code != 1 || !strings.Contains(out, "FAIL  cluster gone: unreachable") || !strings.Contains(errOut, "1 of 6 checks failed") {
		t.Fatalf("an unreachable cluster: exit %d\n%s%s", code, out, errOut)
	}
}

var (
	openLine     = regexp.MustCompile(`Open (http://127\.0\.0\.1:\d+/) in a browser`)
	formAction   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	formManifest = regexp.MustCompile(`name="manifest" value="([^"]+)"`)
)

// The operator runs kubeplan setup github on their machine and follows the printed address:
// the App is created, its secrets land in files only the operator can read, and the printed
// kubectl command and configuration use them.
func TestSetupGitHubCommand(t *testing.T) {
	emu := forgeemu.New(emuToken, emuBot)
	defer emu.Close()
	out := filepath.Join(t.TempDir(), "app")
	stdout := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"setup", "github", "--github-url", emu.GitHubAPI(), "--org", "acme",
			"--webhook-url", "https://kubeplan.acme.example/webhooks/github", "--no-browser", "--out", out}, stdout, io.Discard)
	}()
	var start string
	until(t, "the start address is printed", func() bool {
		if m := openLine.FindStringSubmatch(stdout.String()); m != nil {
			start = m[1]
		}
		return start != ""
	})

	// The browser: the start page's form goes to GitHub, which sends it back to the callback.
	resp, err := http.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action, manifest := formAction.FindStringSubmatch(string(page)), formManifest.FindStringSubmatch(string(page))
	if action == nil || manifest == nil {
		t.Fatalf("start page:\n%s", page)
	}
	if !strings.HasPrefix(html.UnescapeString(action[1]), emu.URL()+"/organizations/acme/settings/apps/new?state=") {
		t.Fatalf("the form posts to %s, want the organization's new-App page on the Enterprise web root", action[1])
	}
	resp, err = http.PostForm(html.UnescapeString(action[1]), url.Values{"manifest": {html.UnescapeString(manifest[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}

	printed := stdout.String()
	id, err := os.ReadFile(filepath.Join(out, "app-id"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"app-id", "private-key.pem", "webhook-secret"} {
		info, err := os.Stat(filepath.Join(out, f))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, info.Mode(), err)
		}
	}
	key, _ := os.ReadFile(filepath.Join(out, "private-key.pem"))
	secret, _ := os.ReadFile(filepath.Join(out, "webhook-secret"))
	if !strings.Contains(string(key), "PRIVATE KEY") || len(secret) < 20 {
		t.Fatalf("key %d bytes, secret %q", len(key), secret)
	}
	for _, want := range []string{"appID: " + strings.TrimSpace(string(id)), "baseURL: " + emu.GitHubAPI(),
		"kubectl create secret generic kubeplan-github --namespace kubeplan",
		"--from-file=KUBEPLAN_GITHUB_PRIVATE_KEY=" + filepath.Join(out, "private-key.pem"),
		"--from-file=KUBEPLAN_GITHUB_WEBHOOK_SECRET=" + filepath.Join(out, "webhook-secret"),
		"/apps/kubeplan/installations/new"} {
		if !strings.Contains(printed, want) {
			t.Errorf("output lacks %q:\n%s", want, printed)
		}
	}
	if strings.Contains(printed, string(secret)) || strings.Contains(printed, "PRIVATE KEY") {
		t.Error("a secret was printed")
	}

	// Run again into the same directory: refused before anything is created on GitHub.
	code, _, errOut := kubeplan("setup", "github", "--github-url", emu.GitHubAPI(), "--webhook-url", "https://k.example/webhooks/github", "--no-browser", "--out", out)
	if code != 1 || !strings.Contains(errOut, "exists (an earlier App's?)") || len(emu.AppManifests()) != 1 {
		t.Errorf("second run into the same --out: exit %d %q, %d manifests", code, errOut, len(emu.AppManifests()))
	}
}

func TestVersion(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/kubeplan/kubeplan", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		info     *debug.BuildInfo
		override string
		want     string
	}{
		{info, "", "kubeplan v1.4.0 commit 0123456789ab (2026-01-02T03:04:05Z, modified) go1.26.0 " + platform},
		{info, "v1.4.1-rc.1", "kubeplan v1.4.1-rc.1 commit 0123456789ab (2026-01-02T03:04:05Z, modified) go1.26.0 " + platform},
		{&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, "", "kubeplan (devel) go1.26.0 " + platform},
		{nil, "", "kubeplan (unknown) " + runtime.Version() + " " + platform},
	} {
		if got := versionString(tc.info, tc.override); got != tc.want {
			t.Errorf("versionString = %q, want %q", got, tc.want)
		}
	}
	code, out, _ := kubeplan("version")
	if code != 0 || !strings.HasPrefix(out, "kubeplan ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("kubeplan version: %d %q", code, out)
	}
}
