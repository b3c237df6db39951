# kubeplan — see README.md. Every target installs or builds what it needs.
SHELL := bash
GO ?= go
# Kubernetes test binaries (kube-apiserver, etcd, kubectl), built once into a cache.
KUBE_ASSETS = $(shell hack/kube-binaries.sh)
# A PostgreSQL server on loopback for the store's tests (installed and started where it can be).
KUBEPLAN_TEST_POSTGRES ?= $(shell hack/postgres.sh)
# A headless Chromium for the web page's real-browser tests (Debian's, installed where missing).
KUBEPLAN_TEST_CHROMIUM ?= $(shell hack/chromium.sh)
TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: build test bench demo lint fuzz kube-binaries image kustomize clean

# One `go build` for the three binaries: their packages compile once, in parallel.
build:
	$(GO) build -o bin/ ./cmd/bot ./internal/devcluster ./internal/demopr
	mv -f bin/bot bin/kubeplan

kube-binaries:
	@hack/kube-binaries.sh

# kubeplan's container image as an OCI archive, built without a container runtime (static
# binary, non-root user, no shell); push it with skopeo, crane or oras (docs/install.md).
VERSION ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' deploy/helm/kubeplan/Chart.yaml)
image:
	$(GO) run ./internal/mkimage -version $(VERSION) -o bin/kubeplan-image.tar

# The Kustomize base is the Helm chart rendered; regenerate it after changing the chart.
kustomize:
	$(GO) generate ./deploy

test: lint
	KUBEBUILDER_ASSETS="$(KUBE_ASSETS)" KUBEPLAN_TEST_POSTGRES="$(KUBEPLAN_TEST_POSTGRES)" KUBEPLAN_TEST_CHROMIUM="$(KUBEPLAN_TEST_CHROMIUM)" $(GO) test $(TEST_FLAGS) ./...

# Go micro-benchmarks, then kubeplan vs kubectl diff vs the raw floor on a local apiserver.
bench: build
	KUBEPLAN_TEST_POSTGRES="$(KUBEPLAN_TEST_POSTGRES)" $(GO) test -run '^$$' -bench . -benchmem ./objdiff ./render ./isolate ./store
	KUBEBUILDER_ASSETS="$(KUBE_ASSETS)" $(GO) run ./bench/plancompare
	KUBEBUILDER_ASSETS="$(KUBE_ASSETS)" $(GO) run ./bench/webhookload

# Every fuzz target for FUZZTIME each (their seeds also run in `make test`).
FUZZTIME ?= 30s
FUZZ_TARGETS = ./webhook:FuzzGitHubWebhook ./webhook:FuzzGitLabWebhook ./archive:FuzzExtract \
	./commands:FuzzParse ./repoconfig:FuzzParse ./render:FuzzRenderManifests \
	./render:FuzzKustomizeLoader ./render:FuzzAliasExpansion
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "== $$name ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

demo: build
	KUBEBUILDER_ASSETS="$(KUBE_ASSETS)" hack/demo.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
