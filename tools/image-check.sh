#!/usr/bin/env bash
# image-check.sh VERSION: build the image with Debian's buildah (vfs storage, chroot isolation)
# FROM scratch plus the host's CA bundle, since no registry can be reached, and run
# `omniroute version` inside it. Where buildah is missing and cannot be installed (not root, no
# apt-get) it says so and exits 0: the check did not run, and nothing claims it passed.
set -euo pipefail
version=${1:?usage: image-check.sh VERSION}
os=linux arch=amd64
cd "$(dirname "$0")/.."

if ! command -v buildah >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "image-check: installing buildah (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq buildah >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq buildah >/dev/null; }
  else
    echo "image-check: NOT RUN: buildah is not installed and cannot be installed here ($( [[ $(id -u) == 0 ]] && echo 'no apt-get' || echo 'not root' )); the image was not built or tested"
    exit 0
  fi
fi

ca=/etc/ssl/certs/ca-certificates.crt
[[ -s $ca ]] || { echo "image-check: no CA bundle at $ca (Debian's ca-certificates)"; exit 1; }
rm -rf .build/rootfs && mkdir -p .build/rootfs/etc/ssl/certs && cp "$ca" .build/rootfs/etc/ssl/certs/
trap 'rm -rf .build/rootfs; mkdir -p .build/rootfs' EXIT

export BUILDAH_ISOLATION=chroot
store=$(mktemp -d /tmp/omniroute-buildah.XXXXXX)
b=(buildah --storage-driver vfs --root "$store/root" --runroot "$store/run")
cleanup() { "${b[@]}" rm --all >/dev/null 2>&1 || true; "${b[@]}" rmi --all --force >/dev/null 2>&1 || true; rm -rf "$store" .build/rootfs; mkdir -p .build/rootfs; }
trap cleanup EXIT

tag=localhost/omniroute:image-check
"${b[@]}" build --quiet --isolation chroot --layers=false \
  --build-arg BASE_IMAGE=scratch --build-arg OS=$os --build-arg ARCH=$arch \
  --build-arg VERSION="$version" --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -f Dockerfile -t "$tag" . >/dev/null

user=$("${b[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")
entry=$("${b[@]}" inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$tag")
label=$("${b[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}' "$tag")
[[ $user == 65532:65532 ]] || { echo "image-check: USER is $user, want 65532:65532"; exit 1; }
[[ $entry == '[/bin/omniroute]' ]] || { echo "image-check: ENTRYPOINT is $entry, want [\"/bin/omniroute\"]"; exit 1; }
[[ $label == "$version" ]] || { echo "image-check: version label is $label, want $version"; exit 1; }

ctr=$("${b[@]}" from --quiet "$tag")
mnt=$("${b[@]}" mount "$ctr")
[[ -s $mnt/etc/ssl/certs/ca-certificates.crt ]] || { echo "image-check: no CA bundle in the image"; exit 1; }
out=$("${b[@]}" run --isolation chroot --user 65532:65532 "$ctr" -- /bin/omniroute version)
[[ $out == "omniroute $version" ]] || { echo "image-check: \`omniroute version\` in the image printed \"$out\", want \"omniroute $version\""; exit 1; }
echo "image-check: ok: built FROM scratch with buildah (vfs, chroot); \`omniroute version\` in the image printed \"$out\"; USER $user, ENTRYPOINT $entry"
