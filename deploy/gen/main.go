// Command gen writes the Kustomize base: kubeplan's Helm chart rendered with a values file.
// `go generate ./deploy` runs it with the defaults, regenerating deploy/kustomize; with flags it
// writes a base of your own (another namespace, namespaced RBAC, your configuration).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/kubeplan/kubeplan/deploy"
)

func main() {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	values := flag.String("values", deploy.KustomizeValues, "values file, relative to the repository root")
	namespace := flag.String("namespace", deploy.Namespace, "namespace to install into")
	out := flag.String("o", filepath.Join(root, deploy.KustomizeDir), "directory to write the base into")
	flag.Parse()
	files, err := deploy.KustomizeBase(context.Background(), root, *namespace, *values)
	if err == nil {
		err = deploy.WriteKustomizeBase(*out, files)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy/gen:", err)
		os.Exit(1)
	}
}
