#!/bin/sh
# debian-install PACKAGE...: Debian packages onto the image, without recommends or docs. apt's lists and
# downloads stay in the build's cache mounts (/var/lib/apt/lists, /var/cache/apt), never in a layer: the
# base's docker-clean hook, which would empty the cache after each install, is removed first.
set -eu
rm -f /etc/apt/apt.conf.d/docker-clean
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
rm -rf /usr/share/doc /usr/share/man
