// Package browsertest drives a real headless Chromium from Go tests (chromedp): it starts
// the browser the machine has (KUBEPLAN_TEST_CHROMIUM, which hack/chromium.sh prints),
// records everything the page writes to its console, and saves screenshots as test artifacts.
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is one tab of a headless Chromium that lives as long as the test.
type Browser struct {
	// Ctx runs chromedp actions in the tab.
	Ctx context.Context
	t   testing.TB

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	marks   map[string]chan struct{}
}

// New starts Chromium for t. Without KUBEPLAN_TEST_CHROMIUM the test skips, saying how to
// get one, except under CI=true where a skipped browser test would hide a broken page.
func New(t testing.TB) *Browser {
	t.Helper()
	bin := os.Getenv("KUBEPLAN_TEST_CHROMIUM")
	if bin == "" {
		msg := "no browser: set KUBEPLAN_TEST_CHROMIUM to a Chromium (export KUBEPLAN_TEST_CHROMIUM=$(hack/chromium.sh) installs Debian's where missing)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// The closed test network refuses the browser's own background connections; these
	// flags keep it from trying, and a fresh profile from remembering anything.
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	b := &Browser{Ctx: ctx, t: t, marks: map[string]chan struct{}{}}
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	messages := chromedp.Console(ctx) // starts the browser
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.record(m)
		}
	}()
	return b
}

const markPrefix = "browsertest-mark "

func (b *Browser) record(m chromedp.ConsoleMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if mark, ok := strings.CutPrefix(m.Text, markPrefix); ok && m.Type == chromedp.ConsoleLog {
		if ch := b.marks[mark]; ch != nil {
			close(ch)
			delete(b.marks, mark)
		}
		return
	}
	b.console = append(b.console, m)
}

// Run runs chromedp actions in the tab, failing the test on error.
func (b *Browser) Run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// Console is what the pages wrote to the console so far: calls of the console API,
// uncaught exceptions, and the browser's own log (a resource that failed to load, a
// Content-Security-Policy violation). It waits until every message the tab wrote before the
// call has arrived.
func (b *Browser) Console() []chromedp.ConsoleMessage {
	b.t.Helper()
	mark := time.Now().Format(time.RFC3339Nano)
	ch := make(chan struct{})
	b.mu.Lock()
	b.marks[mark] = ch
	b.mu.Unlock()
	// DevTools evaluation runs whatever the page's CSP says; the console keeps order, so
	// the mark arrives after everything before it.
	if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[any]("console.log("+jsString(markPrefix+mark)+")")); err != nil {
		b.t.Fatalf("browser: mark the console: %v", err)
	}
	select {
	case <-ch:
	case <-b.Ctx.Done():
		b.t.Fatalf("browser: console: %v", b.Ctx.Err())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), b.console...)
}

// NoConsoleMessages fails the test for every console message, exception or browser log
// entry the pages wrote: a page that works writes none.
func (b *Browser) NoConsoleMessages() {
	b.t.Helper()
	for _, m := range b.Console() {
		b.t.Errorf("browser console: %s (%s:%d)", m, m.URL, m.Line)
	}
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Screenshot saves the whole page as name.png in the test's artifact directory and returns
// its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	dir := ArtifactDir(b.t)
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// ArtifactDir is where a test's artifacts go: $KUBEPLAN_TEST_ARTIFACTS/<test>, else
// bin/test-artifacts/<test> in the repository (git ignores bin/).
func ArtifactDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("KUBEPLAN_TEST_ARTIFACTS")
	if root == "" {
		_, file, _, _ := runtime.Caller(0)
		root = filepath.Join(filepath.Dir(file), "..", "..", "bin", "test-artifacts")
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
