package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kubeplan/kubeplan/setup"
)

func newSetupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Create kubeplan's forge credentials from this machine",
	}
	cmd.AddCommand(newSetupGitHubCommand())
	return cmd
}

func newSetupGitHubCommand() *cobra.Command {
	var o setup.GitHubOptions
	var out, secretName, namespace string
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "github --webhook-url https://KUBEPLAN_HOST/webhooks/github",
		Short: "Create kubeplan's GitHub App from a manifest, with the permissions and events it needs",
		Long: `Create kubeplan's GitHub App from a manifest. Run it on your own machine: it opens (or
prints) a page on 127.0.0.1 that sends you to GitHub to confirm the App, GitHub sends your
browser back to that address with a one-time code, and kubeplan exchanges the code for the
App's id, private key and webhook secret. They are written to files in --out (mode 0600), and
the kubectl command that makes a Secret of them is printed. Nothing is sent anywhere else.

Enterprise Server: --github-url https://HOST/api/v3/. Install the App on your repositories
afterwards (the link is printed), then run kubeplan doctor.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Refuse before GitHub creates anything: an App whose key cannot be saved is lost.
			for _, f := range appFiles(out) {
				if _, err := os.Stat(f); err == nil {
					return fmt.Errorf("setup github: %s exists (an earlier App's?): choose another --out", f)
				}
			}
			o.Out = cmd.OutOrStdout()
			if !noBrowser {
				o.Open = openBrowser
			}
			app, err := setup.CreateGitHubApp(cmd.Context(), o)
			if err != nil {
				return err
			}
			return writeGitHubApp(cmd.OutOrStdout(), app, o.BaseURL, out, secretName, namespace)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.WebhookURL, "webhook-url", "", "where GitHub sends webhooks: https://KUBEPLAN_HOST/webhooks/github (required)")
	f.StringVar(&o.BaseURL, "github-url", "", "GitHub API URL: empty for github.com, https://HOST/api/v3/ for Enterprise Server")
	f.StringVar(&o.Org, "org", "", "create the App under this organization (default: your personal account)")
	f.StringVar(&o.Name, "name", "kubeplan", "the App's name (unique on the GitHub instance)")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:0", "loopback address of the page and callback")
	f.BoolVar(&noBrowser, "no-browser", false, "print the address instead of opening a browser")
	f.StringVar(&out, "out", "kubeplan-github-app", "directory for the App's id, private key and webhook secret")
	f.StringVar(&secretName, "secret-name", "kubeplan-github", "name of the Secret in the printed kubectl command")
	f.StringVarP(&namespace, "namespace", "n", "kubeplan", "namespace of the Secret in the printed kubectl command")
	return cmd
}

// writeGitHubApp writes the App's credentials to files and says how to use them: the config
// keys, the kubectl command for the Secret (its keys are the environment variables serve reads).
func writeGitHubApp(w io.Writer, app *setup.GitHubApp, baseURL, dir, secretName, namespace string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("setup github: %w", err)
	}
	files := appFiles(dir)
	id, key, secret := files[0], files[1], files[2]
	for path, data := range map[string][]byte{key: app.PrivateKey, secret: []byte(app.WebhookSecret), id: []byte(strconv.FormatInt(app.ID, 10) + "\n")} {
		// O_EXCL: an earlier App's key is never overwritten.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("setup github: the App %d was created, but its credentials could not be written: %w", app.ID, err)
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("setup github: write %s: %w", path, err)
		}
	}
	fmt.Fprintf(w, "\nCreated the GitHub App %s (id %d): %s\n", app.Slug, app.ID, app.HTMLURL)
	fmt.Fprintf(w, "Its id, private key and webhook secret are in %s/ (keep them secret; delete them once stored).\n\n", dir)
	fmt.Fprintf(w, "1. Install it on the repositories kubeplan should plan: %s/installations/new\n", app.HTMLURL)
	fmt.Fprintf(w, "2. Store the secrets for kubeplan serve:\n\n")
	fmt.Fprintf(w, "   kubectl create secret generic %s --namespace %s \\\n     --from-file=KUBEPLAN_GITHUB_PRIVATE_KEY=%s \\\n     --from-file=KUBEPLAN_GITHUB_WEBHOOK_SECRET=%s\n\n",
		secretName, namespace, key, secret)
	fmt.Fprintf(w, "3. In kubeplan's configuration file:\n\n   github:\n     appID: %d\n", app.ID)
	if baseURL != "" {
		fmt.Fprintf(w, "     baseURL: %s\n", baseURL)
	}
	fmt.Fprintf(w, "\n4. Check the installation: kubeplan doctor --config FILE\n")
	return nil
}

// appFiles are where the App's id, private key and webhook secret are written.
func appFiles(dir string) []string {
	return []string{filepath.Join(dir, "app-id"), filepath.Join(dir, "private-key.pem"), filepath.Join(dir, "webhook-secret")}
}

// openBrowser opens url in the desktop's browser.
func openBrowser(url string) error {
	var name string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		return exec.Command("rundll32", "url.dll,FileProtocolHandler", url).Start()
	default:
		name = "xdg-open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return errors.New("no " + name + " on this machine")
	}
	return exec.Command(path, url).Start()
}
