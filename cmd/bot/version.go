package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version, when set at build time (-ldflags "-X main.version=v1.2.3"), overrides the module
// version the Go toolchain records.
var version = ""

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kubeplan's version, commit and Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			info, _ := debug.ReadBuildInfo()
			fmt.Fprintln(cmd.OutOrStdout(), versionString(info, version))
		},
	}
}

// versionString says what was built: the module version (a tag when installed with `go install
// …@v1.2.3`, "(devel)" from a checkout), the commit and whether the tree had local changes,
// and the Go version and platform, e.g.
// "kubeplan v1.2.3 commit 0123456789ab (2026-01-02T03:04:05Z) go1.26.0 linux/amd64".
func versionString(info *debug.BuildInfo, override string) string {
	v, goVersion := "(unknown)", runtime.Version()
	var commit, when string
	modified := false
	if info != nil {
		if info.Main.Version != "" {
			v = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if override != "" {
		v = override
	}
	parts := []string{"kubeplan", v}
	if commit != "" {
		c := "commit " + commit[:min(12, len(commit))]
		var notes []string
		if when != "" {
			notes = append(notes, when)
		}
		if modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			c += " (" + strings.Join(notes, ", ") + ")"
		}
		parts = append(parts, c)
	}
	return strings.Join(append(parts, goVersion, runtime.GOOS+"/"+runtime.GOARCH), " ")
}

// buildVersion is versionString for this binary.
func buildVersion() string {
	info, _ := debug.ReadBuildInfo()
	return versionString(info, version)
}
