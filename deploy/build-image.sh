#!/usr/bin/env bash
# Build the bot's container image without any image registry: the base is Debian bookworm made
# by mmdebstrap from Debian's packages, imported into local storage, then deploy/Containerfile is
# built on it with buildah, from wheels this machine fetches first (pip's own trust settings
# apply; the build step itself is offline). Needs root (or a user namespace), mmdebstrap and buildah:
#   apt-get install -y mmdebstrap buildah
# Usage: deploy/build-image.sh [TAG]      (default tag: localhost/chatops-bot:<version>)
# Then push it to your registry (ECR) with `buildah push`, or save it with `buildah push … oci-archive:…`.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
tag=${1:-localhost/chatops-bot:$version}
base=localhost/chatops-base:bookworm
storage=${BUILDAH_STORAGE_DRIVER:-vfs}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if ! buildah --storage-driver="$storage" inspect --type image "$base" >/dev/null 2>&1; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "build-image: making the Debian bookworm base with mmdebstrap"
  mmdebstrap --quiet --variant=apt --include=python3,python3-venv,ca-certificates \
    bookworm "$work/rootfs.tar" "$mirror"
  container=$(buildah --storage-driver="$storage" from scratch)
  buildah --storage-driver="$storage" add "$container" "$work/rootfs.tar" /
  buildah --storage-driver="$storage" commit --quiet --rm "$container" "$base" >/dev/null
fi

echo "build-image: fetching the wheels of the bot and its dependencies"
rm -rf build/wheels
python3 -m pip wheel --quiet --wheel-dir build/wheels .

echo "build-image: building $tag"
buildah --storage-driver="$storage" build --quiet --isolation=chroot --layers=false \
  --build-arg BASE="$base" -f deploy/Containerfile -t "$tag" .
echo "build-image: built $tag"
