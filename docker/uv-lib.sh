# Shell helpers shared by the Dockerfile's install steps; sourced, not run:
#   RUN --mount=type=bind,source=docker/uv-lib.sh,target=/tmp/uv-lib.sh ... . /tmp/uv-lib.sh; ...
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

# pick_python: set $py to the vendor image's interpreter and $target to uv's flags for where it keeps
# packages (its venv if VIRTUAL_ENV is set, else the system site, which Debian marks externally managed).
pick_python() {
    py="$(command -v python || command -v python3)"
    target="--system --break-system-packages"
    if [ -n "${VIRTUAL_ENV:-}" ]; then target=""; fi
}
