#!/bin/sh
# Builds the kubelet (k8s.io/kubernetes, KUBELET_VERSION) from the Go module
# proxy into a cache outside the repo and prints the binary's path; a binary
# already there is reused. TestKubelet and `make kubelet` run it.
#
# The kubernetes module on the proxy has no vendor/ and no staging/ tree: its
# go.mod replaces its 31 staging modules (k8s.io/api, k8s.io/client-go, ...)
# with ./staging/src/k8s.io/NAME. Each of them is published on its own as
# k8s.io/NAME@v0.MINOR.PATCH: downloaded into staging/, they make the tree
# the module's own go.work names. The proxy has no
# k8s.io/sample-cli-plugin nor sample-controller, which kubelet does not
# need: they stay out.
set -eu
KUBELET_VERSION=${KUBELET_VERSION:-v1.37.2}
cache=${CTRFS_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ctrfs-test}
out=$cache/kubelet-$KUBELET_VERSION
bin=$out/kubelet
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
staging=v0.${KUBELET_VERSION#v1.}
work=$(mktemp -d "${TMPDIR:-/tmp}/kubelet-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

# download prints the module's directory in the module cache (go's
# error, a JSON field, goes to stderr).
download() {
	j=$(go mod download -json "$1") || { echo "$j" >&2; return 1; }
	echo "$j" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}
src=$(download "k8s.io/kubernetes@$KUBELET_VERSION")
[ -n "$src" ] || { echo "build.sh: no k8s.io/kubernetes@$KUBELET_VERSION" >&2; exit 1; }
# The module cache is read-only, and the build needs the staging tree in it.
cp -r "$src" kubernetes
chmod -R u+w kubernetes
mkdir -p kubernetes/staging/src/k8s.io
for n in $(sed -n 's|^[[:space:]]*\./staging/src/k8s.io/||p' kubernetes/go.work | grep -v -x -e sample-cli-plugin -e sample-controller); do
	d=$(download "k8s.io/$n@$staging")
	[ -n "$d" ] || { echo "build.sh: no k8s.io/$n@$staging" >&2; exit 1; }
	cp -r "$d" "kubernetes/staging/src/k8s.io/$n"
	chmod -R u+w "kubernetes/staging/src/k8s.io/$n"
done
# The module's own go.work lists the staging modules: the two the proxy
# lacks leave it.
sed -i -e '/staging\/src\/k8s.io\/sample-cli-plugin$/d' -e '/staging\/src\/k8s.io\/sample-controller$/d' kubernetes/go.work
cd kubernetes
mkdir -p "$out"
# The version as a release build says it (else v0.0.0-master).
v=k8s.io/component-base/version
minor=${KUBELET_VERSION#v1.}
minor=${minor%%.*}
CGO_ENABLED=0 go build -ldflags "-X $v.gitVersion=$KUBELET_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
	-o "$bin.tmp" ./cmd/kubelet
mv "$bin.tmp" "$bin"
echo "$bin"
