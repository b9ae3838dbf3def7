#!/usr/bin/env bash
# Builds the pinned control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kubectl) from their published Go modules into a versioned cache directory outside the
# repository, and prints that directory on stdout (progress goes to stderr).
#
# The versions are the ones required in hack/control-plane/*/go.mod; go.sum pins the sources.
# A second run finds a matching stamp and returns in well under a second.
#
# Environment:
#   KUBEBUILDER_ASSETS     a directory that already holds the binaries: used as is, nothing is built
#   CONTROL_PLANE_CACHE    where versioned builds go (default: ${XDG_CACHE_HOME:-~/.cache}/controller-sharding/control-plane)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
modules="$here/control-plane"

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

required=(etcd kube-apiserver kube-controller-manager)

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for bin in "${required[@]}"; do
    [[ -x "$KUBEBUILDER_ASSETS/$bin" ]] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $bin"
  done
  log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS, nothing to build"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

command -v go >/dev/null || die "go is not installed (the pinned release needs Go $(sed -n 's/^go //p' "$modules/kubernetes/go.mod") or newer)"

# The one place versions are read from: the wrapper modules' requirements.
module_version() { (cd "$modules/$1" && go list -m -f '{{.Version}}' "$2"); }
k8s_version=$(module_version kubernetes k8s.io/kubernetes)
etcd_version=$(module_version etcd go.etcd.io/etcd/server/v3)
[[ -n "$k8s_version" && -n "$etcd_version" ]] || die "cannot read the pinned versions from $modules/*/go.mod"

cache_root="${CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/controller-sharding/control-plane}"
out="$cache_root/kubernetes-$k8s_version-etcd-$etcd_version"
stamp_want=$(cat "${BASH_SOURCE[0]}" "$modules"/*/go.mod "$modules"/*/go.sum | sha256sum | cut -d' ' -f1)

mkdir -p "$cache_root"
# Tests and experiments may call this concurrently: one builds, the others wait for it.
exec 9>"$cache_root/.lock"
flock 9

if [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp_want" ]]; then
  log "up to date: kubernetes $k8s_version, etcd $etcd_version in $out"
  echo "$out"
  exit 0
fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod
# The release's publication time, so that a rebuild of the same release is byte-identical.
build_date=$(cd "$modules/kubernetes" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
minor=${k8s_version#v1.}; minor=${minor%%.*}
k8s_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$k8s_version \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=$build_date \
 -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
etcd_ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$etcd_version"

staging=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$staging"' EXIT

start=$SECONDS
build() { # module, ldflags, name=package...
  local module=$1 ldflags=$2; shift 2
  for target in "$@"; do
    log "building ${target%%=*} ($((SECONDS - start))s elapsed)"
    (cd "$modules/$module" && go build -trimpath -ldflags "$ldflags" -o "$staging/${target%%=*}" "${target#*=}")
  done
}
log "downloading modules for kubernetes $k8s_version and etcd $etcd_version"
(cd "$modules/etcd" && go mod download) && (cd "$modules/kubernetes" && go mod download)
build etcd "$etcd_ldflags" etcd=go.etcd.io/etcd/server/v3
build kubernetes "$k8s_ldflags" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  kubectl=k8s.io/kubernetes/cmd/kubectl

"$staging/kube-apiserver" --version | grep -qx "Kubernetes $k8s_version" || die "kube-apiserver does not report $k8s_version"
echo "$stamp_want" >"$staging/.stamp"
rm -rf "$out"
mv "$staging" "$out"
trap - EXIT
log "built kubernetes $k8s_version and etcd $etcd_version in $((SECONDS - start))s: $out"
echo "$out"
