#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests, the demo and the benchmark run against
# (kube-apiserver, etcd, kubectl) from the Go module proxy, into a cache shared by every
# checkout on this machine. Prints the directory holding them (use it as KUBEBUILDER_ASSETS).
#
# Why from source: no binary download site is reachable here, but the Go module proxy is.
# k8s.io/kubernetes is a module whose go.mod points its k8s.io/* staging modules at local
# directories; a wrapper module replaces each with its published v0.X.Y instead.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.0}"
cache="${KUBEPLAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeplan}"
bin="$cache/kube-$KUBE_VERSION/bin"

if [[ -x "$bin/kube-apiserver" && -x "$bin/etcd" && -x "$bin/kubectl" ]]; then
  echo "$bin"
  exit 0
fi

staging="${KUBE_VERSION/v1./v0.}" # v1.37.2 -> v0.37.2
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$cache/kube-$KUBE_VERSION/src"
mkdir -p "$bin"
log() { echo "kube-binaries: $*" >&2; }
start=$(date +%s)

# --- One wrapper module for kube-apiserver, kubectl and etcd ---------------------------
# One module and one `go build`: kube-apiserver's etcd client and the etcd server then share
# grpc, protobuf, otel… at the same versions, each compiled once, and the build keeps both
# cores busy instead of finishing three separate links one after another.
rm -rf "$work/kube" "$work/etcd" # layouts of earlier versions of this script
mod="$work/module"
mkdir -p "$mod/etcd"
cd "$mod"
go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" >/dev/null
kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBE_VERSION.mod"
{
  echo "module kubeplan.local/kube-binaries"
  echo
  echo "go 1.26"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $KUBE_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo ")"
  echo
  # Every staging module kubernetes replaces locally, pinned to its published twin.
  sed -nE 's#^[[:space:]]*(k8s\.io/[a-z0-9-]+) => \./staging/.*#replace \1 => \1 '"$staging"'#p' "$kmod"
  # kubeplan's own requirements too: where both use a module, both then build it at the same
  # version, so the packages they share (k8s.io/api, apimachinery, client-go…) compile once
  # into the Go build cache and serve both builds.
  if [[ -f "$repo/go.mod" ]]; then
    echo
    sed -n '/^require (/,/^)/p' "$repo/go.mod" | grep -vE '^\s*(k8s\.io/kubernetes|go\.etcd\.io/etcd/server/v3) ' || true
  fi
} >go.mod
cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
cat >etcd/main.go <<'GO'
// Command etcd is etcd's own server entry point, built beside kube-apiserver.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
log "resolving k8s.io/kubernetes $KUBE_VERSION (staging modules at $staging) and etcd $ETCD_VERSION"
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$(cut -d. -f1 <<<"${KUBE_VERSION#v}") -X $pkg.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION") -X $pkg.gitTreeState=clean"
done
log "building kube-apiserver, kubectl and etcd (cold: several minutes)"
# No -trimpath and cgo as the default: the same flags as kubeplan's own build, so shared
# packages hit the same build cache entries.
GOFLAGS=-mod=mod go build -ldflags "$ldflags" -o "$bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl ./etcd

log "done in $(($(date +%s) - start))s"
echo "$bin"
