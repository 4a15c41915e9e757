#!/usr/bin/env bash
# setup-podman.sh: make rootful podman usable on the project's machines (Debian 12, root, no systemd, cgroup
# v1/v2 hybrid) and create the local base image the project's images are built FROM. No container registry is
# reachable there, so the base image is built with debootstrap from the Debian archive apt already uses.
#
#   bash infra/setup-podman.sh [TAG]     # TAG defaults to localhost/bookworm-minbase:latest
#
# Then build the CPU image on it (see containers/cpu.Containerfile). Adapted from the reference test
# infrastructure (infra.md section 4). Idempotent: packages installed only when missing, containers.conf
# rewritten with the same content, cgroup mounts made only when needed, the image built only when podman does
# not have TAG yet (about 30-90 s, 204 MB). Ends with a smoke test that runs the image.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TAG=${1:-localhost/bookworm-minbase:latest}

# --- packages ---
export DEBIAN_FRONTEND=noninteractive
pkgs=(podman buildah debootstrap)
if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
  apt-get install -y "${pkgs[@]}" || { apt-get update && apt-get install -y "${pkgs[@]}"; }
fi

# --- fix 1: resource limits ---
# Podman's root defaults (nofile 1048576, nproc 4194304) exceed the machine's hard limits, and crun fails with
# "setrlimit `RLIMIT_NOFILE`: Operation not permitted". Use containers.conf's values, lowered to this machine's
# hard limits where those are lower.
lim() { local v; v=$(ulimit -H "$1"); [[ $v == unlimited ]] && v=$2; echo $(( v < $2 ? v : $2 )); }
nofile=$(lim -n 20000)
nproc=$(lim -u 32768)
mkdir -p /etc/containers
sed -e "s/\"nofile=20000:20000\"/\"nofile=$nofile:$nofile\"/" \
    -e "s/\"nproc=32768:32768\"/\"nproc=$nproc:$nproc\"/" \
    "$HERE/containers.conf" >/etc/containers/containers.conf.new
mv /etc/containers/containers.conf.new /etc/containers/containers.conf

# --- fix 2: cgroups ---
# In hybrid mode crun refuses to run while the cgroup2 hierarchy still owns a controller ("cgroups in hybrid
# mode not supported, drop all controllers from cgroupv2"); here that is hugetlb. Mounting each such controller
# as its own v1 hierarchy empties the v2 controller list.
v2=/sys/fs/cgroup/unified/cgroup.controllers
if [[ -r $v2 ]]; then
  for c in $(<"$v2"); do
    mountpoint -q "/sys/fs/cgroup/$c" && continue
    mkdir -p "/sys/fs/cgroup/$c"
    mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
  done
  [[ -z $(<"$v2") ]] || { echo "controllers still on cgroup2: $(<"$v2")" >&2; exit 1; }
fi

# --- base image: Debian bookworm minbase from debootstrap (its python3 is 3.11, as the torch wheel needs) ---
if ! podman image exists "$TAG"; then
  # the Debian archive apt is configured with (first URIs: line), or $ARCHIVE
  archive=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  archive=${ARCHIVE:-$archive}
  [[ -n $archive ]] || { echo "no Debian archive URI found in apt sources; set ARCHIVE" >&2; exit 1; }
  # $TMPDIR must allow exec and device nodes: debootstrap runs programs inside the new root
  rootfs=$(mktemp -d -t rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" "$archive"
  tar -C "$rootfs" -c . | podman import - "$TAG"
fi
podman run --rm "$TAG" cat /etc/debian_version
