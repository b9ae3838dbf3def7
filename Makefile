# The two entry points of the README, and the pieces they are made of.
.PHONY: run test lint control-plane build image-context

SCENARIO ?= smoke

# Runs experiments/$(SCENARIO).yaml (the smoke sweep by default) on a local control plane
# started for each shard count, and prints where the report is.
run: control-plane build
	./target/release/loadgen experiment experiments/$(SCENARIO).yaml

build:
	cargo build --release --locked -p sharder -p webhosting-operator -p loadgen

# Builds the pinned control plane (cached outside the repository), checks formatting and
# lints, proves the images' build context, then runs every test. This is what CI runs.
test: control-plane lint image-context
	cargo test --workspace --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

control-plane:
	./hack/build-control-plane.sh >/dev/null

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
# A node image of kind v0.29. The stack uses only stable APIs; the checks here run v1.36.
KIND_NODE_IMAGE ?= kindest/node:v1.33.1
KUBECONFIG ?= $(HOME)/.kube/config
IMAGE_REPO ?= controller-sharding
IMAGE_TAG ?= dev
IMAGES := sharder webhosting-operator loadgen
WEBHOOK_CERTS := deploy/sharder/default/certs

kind-up:
	$(KIND) create cluster --name $(KIND_CLUSTER) --image $(KIND_NODE_IMAGE) \
		--config deploy/kind/cluster.yaml --kubeconfig $(KUBECONFIG)

kind-down:
	$(KIND) delete cluster --name $(KIND_CLUSTER) --kubeconfig $(KUBECONFIG)

# One Dockerfile, one target per binary; the builder stage is shared, so Rust compiles once.
images:
	$(foreach image,$(IMAGES),$(DOCKER) build --target $(image) -t $(IMAGE_REPO)/$(image):$(IMAGE_TAG) . &&) true

kind-load:
	$(KIND) load docker-image --name $(KIND_CLUSTER) $(foreach image,$(IMAGES),$(IMAGE_REPO)/$(image):$(IMAGE_TAG))

# The sharder's webhook CA and serving certificate (git-ignored), kept once written.
webhook-certs:
	cargo run --locked -q -p deploy --bin webhook-certs -- $(WEBHOOK_CERTS)

# CRDs first (the ControllerRing needs its CRD established), then the sharder and the operator
# with the images of IMAGE_REPO and IMAGE_TAG, through an overlay that only sets them.
deploy: webhook-certs
	$(KUBECTL) --kubeconfig $(KUBECONFIG) apply --server-side -k deploy/crds
	$(KUBECTL) --kubeconfig $(KUBECONFIG) wait --for condition=Established --timeout 60s \
		crd/controllerrings.sharding.timebertt.dev crd/websites.webhosting.timebertt.dev \
		crd/themes.webhosting.timebertt.dev
	$(call apply-with-images,default,)
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n sharding-system rollout status deployment/sharder --timeout 180s
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n webhosting-system rollout status deployment/webhosting-operator --timeout 180s

monitoring:
	$(KUBECTL) --kubeconfig $(KUBECONFIG) apply --server-side -k deploy/monitoring
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n monitoring rollout status deployment/prometheus --timeout 300s
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n monitoring rollout status deployment/grafana --timeout 300s
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n kube-system rollout status deployment/metrics-server --timeout 300s

# loadgen on this machine against the cluster of KUBECONFIG.
experiment:
	cargo run --release --locked -p loadgen -- experiment experiments/$(SCENARIO).yaml \
		--target cluster --kubeconfig $(KUBECONFIG)

# loadgen as a Job in the cluster (image loadgen): a Job is immutable, so a new scenario
# replaces the previous Job. Follow it with `kubectl -n loadgen logs -f job/loadgen`.
experiment-job:
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n loadgen delete job loadgen --ignore-not-found
	$(call apply-with-images,loadgen,configMapGenerator:\n- name: loadgen-scenario\n  behavior: replace\n  literals:\n  - scenario=$(SCENARIO)\n)

# Copies the Job's results volume to results/cluster/ through a short-lived pod (the loadgen
# image has no shell or tar for `kubectl cp`).
experiment-job-results:
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n loadgen run loadgen-results --restart Never \
		--image docker.io/library/busybox:1.37 --overrides \
		'{"spec":{"volumes":[{"name":"r","persistentVolumeClaim":{"claimName":"loadgen-results"}}],"containers":[{"name":"c","image":"docker.io/library/busybox:1.37","command":["sleep","600"],"volumeMounts":[{"name":"r","mountPath":"/results"}]}]}}'
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n loadgen wait --for condition=Ready --timeout 120s pod/loadgen-results
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n loadgen cp loadgen-results:/results results/cluster
	$(KUBECTL) --kubeconfig $(KUBECONFIG) -n loadgen delete pod loadgen-results --wait=false

# $(call apply-with-images,<directory in deploy/>,<extra kustomization lines>): applies the
# kustomization with every image at IMAGE_REPO and IMAGE_TAG, through a temporary overlay
# (inside deploy/, since kustomize takes no absolute paths).
define apply-with-images
	@overlay=$$(mktemp -d deploy/.overlay.XXXXXX) && trap 'rm -rf "$$overlay"' EXIT && \
	{ printf 'resources:\n- ../%s\nimages:\n' '$(1)' && \
	  for image in $(IMAGES); do \
	    printf -- '- name: controller-sharding/%s\n  newName: $(IMAGE_REPO)/%s\n  newTag: "$(IMAGE_TAG)"\n' $$image $$image; \
	  done && printf '$(2)'; } > "$$overlay/kustomization.yaml" && \
	$(KUBECTL) --kubeconfig $(KUBECONFIG) apply --server-side -k "$$overlay"
endef
