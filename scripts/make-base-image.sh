#!/usr/bin/env bash
# Build a local Debian + python3 base image with debootstrap and `docker import` it.
# No Docker Hub here: this stands in for python:<v>-slim-bookworm.
# Usage: scripts/make-base-image.sh [TAG] [SUITE]
# The Debian mirror is read from this machine's apt sources (never hard-coded).
set -euo pipefail
tag=${1:-local/python:3.11-slim-bookworm}
suite=${2:-bookworm}
docker=${DOCKER:-docker}

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"; exit 0
fi

mirror=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
  | awk '{print $2}' | grep -v -- '-security' | grep -v '^\[' | head -n1 || true)
if [ -z "$mirror" ]; then echo "error: no Debian mirror found in /etc/apt/sources*; set MIRROR=..." >&2; exit 1; fi
mirror=${MIRROR:-$mirror}

root=$(mktemp -d /var/tmp/baseroot.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap $suite into $root (mirror from apt sources)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,tzdata \
  "$suite" "$root" "$mirror" >/var/tmp/debootstrap.log 2>&1 || { tail -20 /var/tmp/debootstrap.log; exit 1; }
# slim it like python:*-slim: no apt lists, docs, man pages or caches
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/var/cache/* "$root"/tmp/*
pyver=$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
tar -C "$root" -c . | "$docker" import \
  -c 'ENV LANG=C.UTF-8' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["python3"]' \
  -m "debootstrap $suite minbase + python3 $pyver" - "$tag" >/dev/null
echo "made base image $tag (python $pyver)"
