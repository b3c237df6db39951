package ui

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kubeplan/kubeplan/history"
	"github.com/kubeplan/kubeplan/internal/browsertest"
)

// In a real browser, on the loopback page (no sign-in): the overview shows the held lock and
// the recent apply, the apply's page its diffs (the hostile object's name as text), the
// object's timeline its changes; the search finds it; on a phone nothing spills sideways;
// and no page writes anything to the console (no CSP violation, no missing resource).
// server's TestHistoryPageSignInInBrowser walks the same pages signed in through the forge.
func TestHistoryPageInBrowser(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, Open{})
	b := browsertest.New(t)
	apply := f.entry(t, history.Apply, shop)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		// As shown: kinds are upper-cased by the style sheet.
		return strings.ToLower(strings.TrimSpace(s))
	}
	eval := func(js string) bool {
		t.Helper()
		ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("browser: %s: %v", js, err)
		}
		return ok
	}

	b.Run("open the overview on a desktop", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`td[data-label="Lock"] .badge.warn`)))
	if got := text(`td[data-label="Lock"]`); !strings.Contains(got, "locked by bob for #12") {
		t.Errorf("lock cell says %q, want who holds it and which PR", got)
	}
	if got := text(`ol.entries li:has(a[href="` + seqPath("/ui/entries/", apply) + `"])`); !strings.Contains(got, "apply") || !strings.Contains(got, "succeeded") || !strings.Contains(got, "1 created, 1 configured") {
		t.Errorf("recent applies say %q", got)
	}
	// The style sheet loaded (the CSP lets it): a badge has its colour.
	if !eval(`getComputedStyle(document.querySelector(".badge.warn")).backgroundColor === "rgb(255, 243, 214)"`) {
		t.Error("the style sheet did not apply")
	}
	b.Screenshot("overview-desktop")

	b.Run("open the recent apply", chromedp.Click(chromedp.CSS(`ol.entries a[href="`+seqPath("/ui/entries/", apply)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("dl.facts")))
	if got := text("h1"); !strings.Contains(got, "apply") || !strings.Contains(got, "web on prod-eu") {
		t.Errorf("entry heading %q", got)
	}
	if got := text(`.objsec h3 a[href*="kind=ConfigMap"]`); got != strings.ToLower("ConfigMap shop/"+hostileName) {
		t.Errorf("hostile object name shown as %q, want it as plain text", got)
	}
	if got := text("pre.diff .add"); got != "+  replicas: 3" {
		t.Errorf("first added line %q", got)
	}
	b.Screenshot("entry-desktop")

	b.Run("open the object's timeline", chromedp.Click(chromedp.CSS(`.objsec h3 a[href*="kind=Deployment"]`)),
		chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
	if n, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll("ol.timeline > li").length`)); n != 3 {
		t.Errorf("timeline shows %d changes, want the plan, the apply and the drift", n)
	}
	if got := text("ol.timeline > li ul.causes"); !strings.Contains(got, `changed by "kubectl"`) {
		t.Errorf("drift shows %q, want who caused it", got)
	}
	b.Screenshot("timeline-desktop")

	b.Run("search for the object", chromedp.SendKeys(chromedp.CSS(`header form.search input[name="q"]`), "api"),
		chromedp.Submit(chromedp.CSS(`header form.search`)), chromedp.WaitVisible(chromedp.CSS("ul.found")))
	if got := text("ul.found li a"); got != "deployment shop/api" {
		t.Errorf("search found %q", got)
	}

	for _, p := range []struct{ name, path, ready string }{
		{"overview-phone", "/ui/", `td[data-label="Lock"]`},
		{"entry-phone", seqPath("/ui/entries/", apply), "dl.facts"},
		{"timeline-phone", "/ui/objects?cluster=prod-eu&kind=Deployment&namespace=shop&name=api", "ol.timeline"},
	} {
		b.Run("open "+p.name, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
			chromedp.Navigate(srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		// Diffs scroll in their own box; the page itself never wider than the phone.
		if !eval(`document.documentElement.scrollWidth <= window.innerWidth`) {
			t.Errorf("%s: the page is wider than the phone", p.name)
		}
		b.Screenshot(p.name)
	}
	b.NoConsoleMessages()
}
