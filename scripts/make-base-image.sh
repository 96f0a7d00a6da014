#!/usr/bin/env bash
# Build a local Debian + python3 base image with debootstrap and `docker import` it.
# No Docker Hub here: this stands in for python:<v>-slim-bookworm.
# Usage: scripts/make-base-image.sh [TAG] [SUITE]
#        scripts/make-base-image.sh --print-mirror [SUITE]   (the mirror it would use, nothing else)
# The Debian mirror is read from this machine's apt sources (never hard-coded); MIRROR= overrides it,
# APT_ETC= reads another apt directory than /etc/apt.
set -euo pipefail

# The Debian archive among this machine's apt sources: `deb [options] URI suite components` lines and
# deb822 stanzas (Types/URIs/Suites/Components) whose components include main, security archives left
# out; one for the wanted suite first, so a third-party repository listed earlier (docker, nodesource...)
# is not chosen. Prints "<0|1> URI" lines, best first.
apt_mirror() {
  local etc=${APT_ETC:-/etc/apt} want=$1 f lists=() stanzas=()
  # only files that exist: mawk (Debian's awk) stops at the first one it cannot open
  for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do [ -f "$f" ] && lists+=("$f"); done
  for f in "$etc"/sources.list.d/*.sources; do [ -f "$f" ] && stanzas+=("$f"); done
  {
    [ ${#lists[@]} -eq 0 ] || awk -v want="$want" '$1 == "deb" {
        i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        comps = ""; for (k = i + 2; k <= NF; k++) comps = comps " " $k " "
        if (comps ~ / main / && $(i + 1) !~ /security/) print ($(i + 1) == want ? 0 : 1), $i
      }' "${lists[@]}"
    # deb822: a line starting with blanks continues the field before it; `Enabled: no` stanzas are off
    [ ${#stanzas[@]} -eq 0 ] || awk -v want="$want" 'BEGIN { RS = ""; FS = "\n" } {
        delete v; key = ""
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^#/) continue
          if (line ~ /^[ \t]/) { if (key != "") v[key] = v[key] " " line; continue }
          key = line; sub(/:.*/, "", key); sub(/^[^:]*:[ \t]*/, "", line); v[key] = line
        }
        types = " " v["Types"] " "; suites = " " v["Suites"] " "; comps = " " v["Components"] " "
        if (tolower(v["Enabled"]) ~ /^[ \t]*no/) next
        if (types ~ /[ \t]deb[ \t]/ && comps ~ /[ \t]main[ \t]/ && suites !~ /security/) {
          n = split(v["URIs"], u, /[ \t]+/)
          for (j = 1; j <= n; j++) if (u[j] != "") print (suites ~ ("[ \t]" want "[ \t]") ? 0 : 1), u[j]
        }
      }' "${stanzas[@]}"
  } | { grep -v ' .*security' || true; } | sort -s -k1,1 | head -n1 | cut -d' ' -f2
}

if [ "${1:-}" = "--print-mirror" ]; then
  mirror=${MIRROR:-$(apt_mirror "${2:-bookworm}")}
  [ -n "$mirror" ] || { echo "error: no Debian archive in ${APT_ETC:-/etc/apt}/sources*" >&2; exit 1; }
  echo "$mirror"; exit 0
fi

tag=${1:-local/python:3.11-slim-bookworm}
suite=${2:-bookworm}
docker=${DOCKER:-docker}

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"; exit 0
fi

mirror=${MIRROR:-$(apt_mirror "$suite")}
if [ -z "$mirror" ]; then echo "error: no Debian mirror found in ${APT_ETC:-/etc/apt}/sources*; set MIRROR=..." >&2; exit 1; fi

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
