# Shell helpers shared by the Dockerfile's install steps; sourced, not run:
#   RUN --mount=type=bind,source=docker/uv-lib.sh,target=/tmp/uv-lib.sh ... . /tmp/uv-lib.sh; ...
# or run with a command: /bin/sh /tmp/uv-lib.sh drop-install-clocks /opt/venv
# POSIX sh (the base's /bin/sh may be dash).

# check_uv_version: fail when the mounted uv is not the version the tools lock pins (UV_VERSION, if set),
# so that every install runs the uv the lock was made with.
check_uv_version() {
    uv_version="$(/opt/uv/uv --version | cut -d' ' -f2)"
    if [ -n "${UV_VERSION:-}" ] && [ "$uv_version" != "${UV_VERSION}" ]; then
        echo "the uv image has uv $uv_version, the tools lock pins ${UV_VERSION}: point image.uv_image at uv ${UV_VERSION}" >&2
        return 1
    fi
}

# index_env: the build secrets as the environment pip and uv read (the install steps mount them with
# --mount=type=secret,id=ca_bundle and id=index_url). ca_bundle: extra CA certificates (a TLS-intercepting
# proxy's, a private index's), trusted in addition to the base image's own trust store when it has one
# (Debian/Ubuntu/Alpine, else RHEL/Fedora: a vendor's extend-mode base), not instead of it; the combined
# bundle is written to /dev/shm, the container's tmpfs, so it is in no layer and gone after the step.
# index_url: the package index URL, credentials included.
index_env() {
    if [ -s /run/secrets/ca_bundle ]; then
        {
            for store in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
                if [ -s "$store" ]; then cat "$store"; echo; break; fi
            done
            cat /run/secrets/ca_bundle
        } > /dev/shm/ca.pem
        export SSL_CERT_FILE=/dev/shm/ca.pem PIP_CERT=/dev/shm/ca.pem
    fi
    if [ -s /run/secrets/index_url ]; then
        UV_DEFAULT_INDEX="$(cat /run/secrets/index_url)"
        export UV_DEFAULT_INDEX PIP_INDEX_URL="$UV_DEFAULT_INDEX"
    fi
}

# pick_python: set $py to the vendor image's interpreter and $target to uv's flags for where it keeps
# packages (its venv if VIRTUAL_ENV is set, else the system site, which Debian marks externally managed).
pick_python() {
    py="$(command -v python || command -v python3)"
    target="--system --break-system-packages"
    if [ -n "${VIRTUAL_ENV:-}" ]; then target=""; fi
}

# drop_install_clocks VENV: remove what uv writes with the install's wall-clock time in it, so that the same
# lock installs the same bytes: `*.dist-info/uv_cache.json` (written for local wheels and source trees: the
# operators package) and its line in the distribution's RECORD.
drop_install_clocks() {
    for f in "$1"/lib/python*/site-packages/*.dist-info/uv_cache.json; do
        [ -e "$f" ] || continue
        rm -f "$f"
        sed -i '/uv_cache\.json,/d' "$(dirname "$f")/RECORD"
    done
}

if [ "${1:-}" = drop-install-clocks ]; then drop_install_clocks "$2"; fi
