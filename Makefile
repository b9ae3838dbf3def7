# The two entry points of the README, and the pieces they are made of.
.PHONY: test lint control-plane

# Builds the pinned control plane (cached outside the repository), checks formatting and
# lints, then runs every test. This is what CI runs.
test: control-plane lint
	cargo test --workspace --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

control-plane:
	./hack/build-control-plane.sh >/dev/null
