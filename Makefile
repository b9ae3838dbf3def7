# The two entry points of the README, and the pieces they are made of.
.PHONY: run test lint control-plane build image-context msrv doc package

# The sizing question `make run` answers by default: how many shards keep both SLOs with
# $(CHURN) changes per second over $(OBJECTS) Websites, searched at $(SHARDS) shards.
OBJECTS ?= 200
CHURN ?= 3
SHARDS ?= 1,2,3

# Without SCENARIO: `loadgen plan` over experiments/plan.yaml, a capacity search per shard count
# on a local control plane, and its answer. With SCENARIO=name: experiments/name.yaml (e.g.
# smoke) run once per shard count. Either prints where the report is.
run: control-plane build
ifeq ($(SCENARIO),)
	./target/release/loadgen plan experiments/plan.yaml --objects $(OBJECTS) --churn $(CHURN) --shards $(SHARDS)
else
	./target/release/loadgen experiment experiments/$(SCENARIO).yaml
endif

build:
	cargo build --release --locked -p sharder -p webhosting-operator -p checksum-controller -p loadgen

# Builds the pinned control plane (cached outside the repository), checks formatting and
# lints, proves the images' build context, checks the published libraries (MSRV, docs,
# packages), then runs every test. This is what CI runs.
test: control-plane lint image-context msrv doc package
	cargo test --workspace --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

control-plane:
	./hack/build-control-plane.sh >/dev/null

# The published libraries with all their code (docs/publishing.md). Built without their
# dev-dependencies, they need a Kubernetes version for k8s-openapi from outside, which only
# applications pick.
LIBRARIES := -p kube-sharding -p controller-runtime-metrics --features kube-sharding/testing
LIBRARY_ENV := K8S_OPENAPI_ENABLED_VERSION=1.36
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)

# The libraries build with the MSRV toolchain (`.ci/run` installs it) and the committed lock
# file; in their own target directory, which the main build would otherwise rebuild over.
msrv:
	$(LIBRARY_ENV) CARGO_TARGET_DIR=target/msrv cargo +$(MSRV) check --locked $(LIBRARIES)

# The documentation docs.rs builds, with broken links as errors.
doc:
	$(LIBRARY_ENV) RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps $(LIBRARIES)

# What `cargo publish` would upload, built from the packaged files alone. --allow-dirty: this
# checks the packages, not that every change is committed.
package:
	$(LIBRARY_ENV) cargo publish --dry-run --locked --allow-dirty $(LIBRARIES)

# The Dockerfile's own `cargo build` in a copy of exactly the files `docker build` sends
# (.dockerignore applied by BuildKit's own walker, hack/image-context), so a file the context
# lacks fails here. The target directory persists, as the Dockerfile's cache mount does.
IMAGE_CONTEXT := target/image-context
image-context:
	@build=$$(sed -n 's/^ *\(cargo build [^&\\]*\).*/\1/p' Dockerfile) && \
	[ -n "$$build" ] || { echo "no cargo build in the Dockerfile" >&2; exit 1; } && \
	rm -rf $(IMAGE_CONTEXT)/context && mkdir -p $(IMAGE_CONTEXT) && \
	(cd hack/image-context && go run . -copy $(CURDIR)/$(IMAGE_CONTEXT)/context $(CURDIR)) && \
	echo "$$build  (in $(IMAGE_CONTEXT)/context)" && \
	cd $(IMAGE_CONTEXT)/context && CARGO_TARGET_DIR=$(CURDIR)/$(IMAGE_CONTEXT)/target $$build

# Running on kind (docs/kind.md): kind-up, images, kind-load, deploy, monitoring, experiment,
# kind-down. Every variable can be overridden: `make deploy IMAGE_TAG=v1 KIND_CLUSTER=x`.
.PHONY: kind-up kind-down images kind-load webhook-certs deploy monitoring experiment \
	experiment-job experiment-job-results

KIND ?= kind
KUBECTL ?= kubectl
DOCKER ?= docker
KIND_CLUSTER ?= controller-sharding
# The kind release docs/kind.md requires, and its default node image with the digest of its
# release (Kubernetes v1.36, the version the checks here run).
KIND_VERSION := v0.32.0
KIND_NODE_IMAGE ?= kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5
# Podman names the images it builds localhost/<name>, and the node knows them by that name.
IMAGE_REPO ?= $(if $(findstring podman,$(DOCKER)),localhost/controller-sharding,controller-sharding)
IMAGE_TAG ?= dev
IMAGES := sharder webhosting-operator loadgen
WEBHOOK_CERTS := deploy/sharder/default/certs
# Every step acts on the kind cluster, whatever the current context. kind, kubectl and loadgen
# find it through KUBECONFIG (a list works) or ~/.kube/config, so no --kubeconfig is passed.
KIND_CONTEXT := kind-$(KIND_CLUSTER)
KUBECTL_KIND := $(KUBECTL) --context $(KIND_CONTEXT)

kind-up:
	@$(KIND) version | grep -qF ' $(KIND_VERSION) ' || \
		echo "warning: KIND_NODE_IMAGE is the node image of kind $(KIND_VERSION), not of this kind" >&2
	$(KIND) create cluster --name $(KIND_CLUSTER) --image $(KIND_NODE_IMAGE) \
		--config deploy/kind/cluster.yaml

kind-down:
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# One Dockerfile, one target per binary; the builder stage is shared, so Rust compiles once.
images:
	$(foreach image,$(IMAGES),$(DOCKER) build --target $(image) -t $(IMAGE_REPO)/$(image):$(IMAGE_TAG) . &&) true

# Through an image archive, which works with Docker and Podman alike (`kind load docker-image`
# always asks docker).
kind-load:
	@archives=$$(mktemp -d) && trap 'rm -rf "$$archives"' EXIT && \
	for image in $(IMAGES); do \
	  $(DOCKER) save -o "$$archives/$$image.tar" $(IMAGE_REPO)/$$image:$(IMAGE_TAG) && \
	  $(KIND) load image-archive --name $(KIND_CLUSTER) "$$archives/$$image.tar" || exit 1; \
	done

# The sharder's webhook CA and serving certificate (git-ignored), kept once written.
webhook-certs:
	cargo run --locked -q -p sharder -- webhook-certs $(WEBHOOK_CERTS)

# CRDs first (the ControllerRing needs its CRD established), then the sharder and the operator
# with the images of IMAGE_REPO and IMAGE_TAG, through an overlay that only sets them.
deploy: webhook-certs
	$(KUBECTL_KIND) apply --server-side -k deploy/crds
	$(KUBECTL_KIND) wait --for condition=Established --timeout 60s \
		crd/controllerrings.sharding.timebertt.dev crd/websites.webhosting.timebertt.dev \
		crd/themes.webhosting.timebertt.dev
	$(call apply-with-images,default,)
	$(KUBECTL_KIND) -n sharding-system rollout status deployment/sharder --timeout 180s
	$(KUBECTL_KIND) -n webhosting-system rollout status deployment/webhosting-operator --timeout 180s

monitoring:
	$(KUBECTL_KIND) apply --server-side -k deploy/monitoring
	$(KUBECTL_KIND) -n monitoring rollout status deployment/prometheus --timeout 300s
	$(KUBECTL_KIND) -n monitoring rollout status deployment/grafana --timeout 300s
	$(KUBECTL_KIND) -n kube-system rollout status deployment/metrics-server --timeout 300s

# loadgen on this machine against the kind cluster.
experiment:
	cargo run --release --locked -p loadgen -- experiment experiments/$(or $(SCENARIO),smoke).yaml \
		--target cluster --context $(KIND_CONTEXT)

# loadgen as a Job in the cluster (image loadgen): a Job is immutable, so a new scenario
# replaces the previous Job. Follow it with `kubectl -n loadgen logs -f job/loadgen`.
experiment-job:
	$(KUBECTL_KIND) -n loadgen delete job loadgen --ignore-not-found
	$(call apply-with-images,loadgen,configMapGenerator:\n- name: loadgen-scenario\n  namespace: loadgen\n  behavior: replace\n  literals:\n  - scenario=$(or $(SCENARIO),smoke)\n)

# Copies the runs on the Job's results volume to results/cluster/<run-id>/ through a
# short-lived pod (the loadgen image has no shell or tar for `kubectl cp`). A pod left by an
# earlier attempt is deleted first, and this one is deleted however the copy ends.
RESULTS_POD := loadgen-results
experiment-job-results:
	$(KUBECTL_KIND) -n loadgen delete pod $(RESULTS_POD) --ignore-not-found
	@trap '$(KUBECTL_KIND) -n loadgen delete pod $(RESULTS_POD) --ignore-not-found --wait=false' EXIT && \
	$(KUBECTL_KIND) -n loadgen run $(RESULTS_POD) --restart Never \
		--image docker.io/library/busybox:1.37 --overrides \
		'{"spec":{"volumes":[{"name":"r","persistentVolumeClaim":{"claimName":"loadgen-results"}}],"containers":[{"name":"c","image":"docker.io/library/busybox:1.37","command":["sleep","600"],"volumeMounts":[{"name":"r","mountPath":"/results"}]}]}}' && \
	$(KUBECTL_KIND) -n loadgen wait --for condition=Ready --timeout 120s pod/$(RESULTS_POD) && \
	$(KUBECTL_KIND) -n loadgen cp $(RESULTS_POD):/results results/cluster

# $(call apply-with-images,<directory in deploy/>,<extra kustomization lines>): applies the
# kustomization with every image at IMAGE_REPO and IMAGE_TAG, through a temporary overlay
# (inside deploy/, since kustomize takes no absolute paths).
define apply-with-images
	@overlay=$$(mktemp -d deploy/.overlay.XXXXXX) && trap 'rm -rf "$$overlay"' EXIT && \
	{ printf 'resources:\n- ../%s\nimages:\n' '$(1)' && \
	  for image in $(IMAGES); do \
	    printf -- '- name: controller-sharding/%s\n  newName: $(IMAGE_REPO)/%s\n  newTag: "$(IMAGE_TAG)"\n' $$image $$image; \
	  done && printf '$(2)'; } > "$$overlay/kustomization.yaml" && \
	$(KUBECTL_KIND) apply --server-side -k "$$overlay"
endef
