package github_test

import (
	"testing"

	ghforge "github.com/kubeplan/kubeplan/forge/github"
)

func TestWebURLOfAnAPIBase(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "https://github.com/",
		"https://api.github.com/":         "https://github.com/",
		"https://ghe.example.com/api/v3/": "https://ghe.example.com/",
		"https://ghe.example.com/api/v3":  "https://ghe.example.com/",
		"https://example.com/ghe/api/v3/": "https://example.com/ghe/",
	} {
		if got, err := ghforge.WebURL(in); err != nil || got != want {
			t.Errorf("WebURL(%q) = %q %v, want %q", in, got, err, want)
		}
	}
}
