# kubeplan — see README.md. Every target installs or builds what it needs.
SHELL := bash
GO ?= go
# Kubernetes test binaries (kube-apiserver, etcd, kubectl), built once into a cache.
KUBE_ASSETS = $(shell hack/kube-binaries.sh)
# A PostgreSQL server on loopback for the store's tests (installed and started where it can be).
KUBEPLAN_TEST_POSTGRES ?= $(shell hack/postgres.sh)
TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: build test bench demo lint fuzz kube-binaries clean

# One `go build` for the three binaries: their packages compile once, in parallel.
build:
	$(GO) build -o bin/ ./cmd/bot ./internal/devcluster ./internal/demopr
	mv -f bin/bot bin/kubeplan

kube-binaries:
	@hack/kube-binaries.sh

test: lint
	KUBEBUILDER_ASSETS="$(KUBE_ASSETS)" KUBEPLAN_TEST_POSTGRES="$(KUBEPLAN_TEST_POSTGRES)" $(GO) test $(TEST_FLAGS) ./...

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
