#!/usr/bin/env bash
# Build the project's images from containers/ and make them usable by the workflow (make images runs this).
#
#   bash containers/build-images.sh [--only cpu|gpu] [--tag TAG] [--base IMAGE] [--torch-wheels DIR] [--ca FILE]
#                                   [--out DIR] [--dry-run]
#
# 1. podman build of containers/<kind>.Containerfile as localhost/mtarl-<kind>:<TAG> (TAG: the version in
#    pyproject.toml), for kind cpu and gpu (--only: one of them). The CPU image takes the CPU torch wheel from
#    --torch-wheels DIR (default: wheels/, downloaded there first if absent, see cpu.Containerfile).
# 2. Where a real Apptainer is installed: podman save to a docker archive, then apptainer build OUT/mtarl-<kind>.sif
#    from it (OUT: resources/images). Snakemake runs a local .sif as it is, with no registry.
# 3. Writes OUT/images.yaml, a config override naming the images just built (the .sif files, or the podman images
#    as docker://localhost/... where there is no Apptainer): snakemake --configfile ... OUT/images.yaml --sdm apptainer
# --dry-run prints the commands instead of running them. Run from anywhere; paths are relative to the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

only="" tag="" base="" wheels="wheels" ca="" out="resources/images" dry=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --only) only=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --torch-wheels) wheels=$2; shift 2 ;;
    --ca) ca=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    *) echo "build-images.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$only" in ""|cpu|gpu) ;; *) echo "build-images.sh: --only takes cpu or gpu, not '$only'" >&2; exit 2 ;; esac
kinds=(cpu gpu)
[[ -n $only ]] && kinds=("$only")
[[ -n $tag ]] || tag=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

run() {
  if (( dry )); then printf '%q' "$1"; printf ' %q' "${@:2}"; echo; else "$@"; fi
}

# A real Apptainer, not the podman test stand-in (tests/apptainer-podman-shim), which cannot run .sif files.
have_apptainer() {
  command -v apptainer >/dev/null && ! apptainer --version 2>/dev/null | grep -q podman-shim
}

run mkdir -p "$out"
declare -A ref
for kind in "${kinds[@]}"; do
  image="localhost/mtarl-$kind:$tag"
  args=(build -f "containers/$kind.Containerfile" -t "$image")
  [[ -n $base ]] && args+=(--build-arg "BASE=$base")
  [[ -n $ca ]] && args+=(--secret "id=ca,src=$ca")
  if [[ $kind == cpu ]]; then
    if ! compgen -G "$wheels/torch-*+cpu-*.whl" >/dev/null; then
      run python3 -m pip download torch==2.13.0 --no-deps -d "$wheels" --index-url https://download.pytorch.org/whl/cpu
    fi
    args+=(--build-context "wheels=$wheels")
  fi
  run podman "${args[@]}" .
  if have_apptainer; then
    run podman save --format docker-archive -o "$out/mtarl-$kind.tar" "$image"
    run apptainer build --force "$out/mtarl-$kind.sif" "docker-archive://$out/mtarl-$kind.tar"
    run rm -f "$out/mtarl-$kind.tar"
    ref[$kind]="$PWD/$out/mtarl-$kind.sif"
  else
    ref[$kind]="docker://$image"
  fi
done

overrides() {
  echo "# Written by containers/build-images.sh: the images it built. Add after your configuration:"
  echo "#   snakemake --configfile <config> $out/images.yaml --sdm apptainer"
  echo "images:"
  for kind in "${kinds[@]}"; do echo "  $kind: \"${ref[$kind]}\""; done
}
if (( dry )); then overrides; else overrides > "$out/images.yaml"; echo "images: $out/images.yaml"; fi
