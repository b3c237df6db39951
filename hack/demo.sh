#!/usr/bin/env bash
# The kubeplan demo: a local cluster, an app applied to it, a change to that app, the plan
# kubeplan prints for the change, the same change as a pull request (plan, /apply, merge), and
# at last an object changed by hand that `kubeplan drift` finds, naming who changed it. Run
# through `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
assets="${KUBEBUILDER_ASSETS:-$(hack/kube-binaries.sh)}"
export KUBEBUILDER_ASSETS="$assets"
work=$(mktemp -d)
export KUBECONFIG="$work/kubeconfig"
kubectl() { KUBECTL_APPLYSET=true "$assets/kubectl" "$@"; }
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

bin/devcluster -clusters local -kubeconfig "$KUBECONFIG" >"$work/devcluster.log" 2>&1 &
devcluster=$!
trap 'kill $devcluster 2>/dev/null; wait $devcluster 2>/dev/null; rm -rf "$work"' EXIT
say "Starting a local Kubernetes control plane (kube-apiserver + etcd on loopback)"
for _ in $(seq 1 240); do
  [[ -f "$KUBECONFIG" ]] && break
  kill -0 $devcluster 2>/dev/null || { cat "$work/devcluster.log"; exit 1; }
  sleep 0.5
done
[[ -f "$KUBECONFIG" ]] || { echo "control plane did not start:"; cat "$work/devcluster.log"; exit 1; }
kubectl version | sed 's/^/    /'

say "Applying examples/web to namespace demo, recorded in ApplySet configmap/kubeplan-web"
kubectl create namespace demo >/dev/null
kubectl apply --server-side --field-manager=kubeplan --prune --applyset=configmap/kubeplan-web \
  -n demo -f examples/web/ | sed 's/^/    /'

say "The change under review (examples/web → examples/web-next)"
diff -ru examples/web examples/web-next | sed 's/^/    /' || true

say "kubeplan plan examples/web-next --project web -n demo --cluster local"
set +e
bin/kubeplan plan examples/web-next --project web -n demo --cluster local --color always
code=$?
set -e
say "exit code $code (0 no changes, 2 changes, 1 error)"
[[ $code == 2 ]]

say "The same change as a pull request: kubeplan serve plans it, /apply applies it, merging rolls it out"
bin/demopr -kubeconfig "$KUBECONFIG"

say "Someone changes the live app by hand: kubectl scale deployment web --replicas=5"
kubectl -n demo scale deployment web --replicas=5 | sed 's/^/    /'

say "kubeplan drift examples/web-next --project web -n demo --cluster local: what differs from git, and who changed it"
set +e
bin/kubeplan drift examples/web-next --project web -n demo --cluster local --color always
code=$?
set -e
say "exit code $code (0 no drift, 2 drift, 1 error)"
[[ $code == 2 ]]
