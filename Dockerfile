# The platform's custom Airflow image. Build it with `make build` (python build.py build), which
# passes the build args, secrets and target below. BuildKit is required (cache and secret mounts);
# there is deliberately no `# syntax=` line: the engine's built-in Dockerfile frontend is used.
#
# Targets (platform.yaml image.base_mode):
#   python  - Debian Python base; Airflow itself installed from the hashed lock (default)
#   extend  - a vendor Airflow image; the project's locks installed on top, Airflow pinned
#
# Layer order: uv (mounted from its image, never copied) -> Airflow lock -> its bytecode -> team lock ->
# operators package -> entrypoint, flavors, plugins, DAGs -> build info (ENV) and labels. A change to
# operators/plugins/DAGs never reinstalls dependencies; what changes every commit comes last. In python
# mode the team lock and the operators package are installed in stages of their own, in parallel with
# the Airflow lock, and copied onto its venv: a cold build waits for the Airflow step only, a team lock change reinstalls no
# Airflow, and an Airflow lock change reinstalls the team's libraries only if their difference changed.

# Build arguments, all up front (stages re-declare the ones they use, without a default). make build
# passes every one of them from platform.yaml; these defaults let a bare `docker build` work too.
ARG BASE_IMAGE=python:3.12-slim-bookworm
ARG BASE_MODE=python
ARG UV_IMAGE=uv-image
ARG PY_TAG=312
# The airflow user's uid (gid 0, as in the official image, so an arbitrary uid in group 0 also works).
ARG AIRFLOW_UID=50000
# The uv version the tools lock pins; a mounted uv of another version fails the build.
ARG UV_VERSION=""
ARG AIRFLOW_VERSION=""
ARG PYTHON_VERSION=""
# What this build is (labels and the plugin's /ml-platform/build page); used in the last steps only, so a
# new commit rebuilds nothing else.
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG LOCK_FINGERPRINT=unknown
ARG SOURCE=""
ARG TITLE=ml-platform-airflow

# ---------------------------------------------------------------- the locks of the image's Python
# One tiny stage per lock, so each install step's cache depends on its own lock only.
FROM scratch AS lock-tools
ARG PY_TAG
COPY requirements/tools-py${PY_TAG}.txt /lock.txt
FROM scratch AS lock-airflow
ARG PY_TAG
COPY requirements/airflow-py${PY_TAG}.txt /lock.txt
FROM scratch AS lock-team
ARG PY_TAG
COPY requirements/team-py${PY_TAG}.txt /lock.txt

# ---------------------------------------------------------------- uv: the installer
# The build mounts uv from the image named by UV_IMAGE (a scratch image with the binary at /uv: the
# layout of the official ghcr.io/astral-sh/uv images, or of the tools image `make build` makes once per
# uv version from the hashed tools lock, target uv-image). uv is in no layer of the final image.
# Without UV_IMAGE, uv is bootstrapped inside this build (stage uv-pip).
FROM ${BASE_IMAGE} AS uv-pip
ARG PY_TAG
USER 0
RUN --mount=type=bind,from=lock-tools,source=/lock.txt,target=/tmp/tools.txt \
    --mount=type=cache,target=/root/.cache/pip,id=pip-py${PY_TAG} \
    --mount=type=secret,id=ca_bundle \
    --mount=type=secret,id=index_url \
    --mount=type=bind,source=docker/uv-lib.sh,target=/tmp/uv-lib.sh \
    set -eu; . /tmp/uv-lib.sh; index_env; \
    # pip runs from wherever the base has it (creating a venv for it would be a wasted step)
    if python3 -m pip --version >/dev/null 2>&1; then pip="python3 -m pip"; \
    else whl="$(ls /usr/share/python-wheels/pip-*.whl \
                  "$(python3 -c 'import ensurepip, os; print(os.path.dirname(ensurepip.__file__))')"/_bundled/pip-*.whl \
                  2>/dev/null | head -n1)"; \
      if [ -n "$whl" ]; then pip="python3 $whl/pip"; else python3 -m venv /tmp/uv-pip; pip=/tmp/uv-pip/bin/pip; fi; \
    fi; \
    PIP_ROOT_USER_ACTION=ignore $pip install --disable-pip-version-check --quiet --require-hashes --no-deps \
      --no-compile --target /tmp/uv-wheel -r /tmp/tools.txt; \
    mv /tmp/uv-wheel/bin/uv /uv; rm -rf /tmp/uv-wheel /tmp/uv-pip; \
    /uv --version
FROM scratch AS uv-image
COPY --from=uv-pip /uv /uv

FROM ${UV_IMAGE} AS uv

# ---------------------------------------------------------------- python: Airflow from the lock
FROM ${BASE_IMAGE} AS python-deps
ARG PY_TAG
# Set (to 0) by a reproducible build (ENGINE=podman): Python then writes checked-hash bytecode (buildah's
# --timestamp 0 sets every file's mtime to 0, which would make timestamp pycs stale) and useradd a fixed
# password-change date. Docker builds leave it unset. A constant, so it never breaks the layer cache.
ARG SOURCE_DATE_EPOCH
ARG AIRFLOW_UID
ARG UV_VERSION
USER 0
ENV AIRFLOW_HOME=/opt/airflow \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never UV_NO_CACHE_CLEAN=1
# The airflow user and the venv with Airflow's lock, in one step (one container start less on a cold build).
RUN --mount=type=bind,from=uv,source=/,target=/opt/uv \
    --mount=type=bind,from=lock-airflow,source=/lock.txt,target=/tmp/locks/airflow.txt \
    --mount=type=secret,id=ca_bundle \
    --mount=type=secret,id=index_url \
    --mount=type=bind,source=docker/uv-lib.sh,target=/tmp/uv-lib.sh \
    set -eu; . /tmp/uv-lib.sh; check_uv_version; \
    # the base's own pip (python:*-slim ships one) has no use in the image: Airflow runs from /opt/venv
    if python3 -m pip --version >/dev/null 2>&1; then \
      PIP_ROOT_USER_ACTION=ignore python3 -m pip uninstall --quiet --yes --break-system-packages pip \
        || echo "warning: could not remove the base image's pip" >&2; fi; \
    useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow; \
    mkdir -p /opt/airflow/dags /opt/airflow/plugins /opt/airflow/logs /opt/airflow/platform /opt/venv; \
    chown -R "${AIRFLOW_UID}:0" /opt/airflow /home/airflow; \
    chmod -R g+rwX /opt/airflow /home/airflow; \
    index_env; \
    # No cache mount for this step: uv unpacks into a temporary cache on this layer's own filesystem and
    # hard-links into the venv; the cache is gone before the layer is committed. From a cache mount
    # (another filesystem: no hard links) every package would be copied instead (docs/image.md).
    # Bytecode is compiled in the next step, so that it is a layer of its own.
    export UV_NO_CACHE=1; \
    /opt/uv/uv venv --quiet --python "$(command -v python3)" /opt/venv; \
    UV_LINK_MODE=hardlink UV_COMPILE_BYTECODE=0 \
      /opt/uv/uv pip sync --quiet --python /opt/venv/bin/python --require-hashes /tmp/locks/airflow.txt
# The Airflow lock's bytecode, as a layer of its own: the engine checksums an image's layers side by side
# when it stores the image (and pushes and pulls them side by side), so two layers of sources and of
# bytecode are stored faster than one of both (figures in docs/image.md). --offline: the venv already is
# the lock (uv fails rather than install anything here); uv compiles the whole venv.
RUN --mount=type=bind,from=uv,source=/,target=/opt/uv \
    --mount=type=bind,from=lock-airflow,source=/lock.txt,target=/tmp/locks/airflow.txt \
    UV_NO_CACHE=1 /opt/uv/uv pip sync --quiet --offline --python /opt/venv/bin/python --require-hashes /tmp/locks/airflow.txt

# The team lock minus what the Airflow lock already pins (docker/lock_difference.py, which fails if the
# two pin a package differently). A stage of its own: the team install below depends on the content of
# this difference only, so an Airflow lock change that leaves it as it was reinstalls nothing of the team's.
FROM ${BASE_IMAGE} AS team-lock
USER 0
RUN --mount=type=bind,from=lock-airflow,source=/lock.txt,target=/tmp/locks/airflow.txt \
    --mount=type=bind,from=lock-team,source=/lock.txt,target=/tmp/locks/team.txt \
    --mount=type=bind,source=docker/lock_difference.py,target=/tmp/lock_difference.py \
    python3 /tmp/lock_difference.py /tmp/locks/airflow.txt /tmp/locks/team.txt > /team-only.txt

# The team's libraries, installed without dependencies (the two locks together are complete) into a
# venv at the same path as Airflow's, in parallel with the Airflow step, and copied over it.
FROM ${BASE_IMAGE} AS team-python
ARG PY_TAG
ARG SOURCE_DATE_EPOCH
USER 0
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never
# Copied, not bind-mounted from the stage: buildah 1.28 mounts nothing (a warning, not an error) from a
# stage whose RUN step came from its cache, which would install no team package at all. Only /opt/venv of
# this stage reaches the image.
COPY --from=team-lock /team-only.txt /tmp/locks/team-only.txt
RUN --mount=type=bind,from=uv,source=/,target=/opt/uv \
    --mount=type=cache,target=/root/.cache/uv,id=uv-py${PY_TAG} \
    --mount=type=secret,id=ca_bundle \
    --mount=type=secret,id=index_url \
    --mount=type=bind,source=docker/uv-lib.sh,target=/tmp/uv-lib.sh \
    set -eu; . /tmp/uv-lib.sh; index_env; \
    /opt/uv/uv venv --quiet --python "$(command -v python3)" /opt/venv; \
    if [ -s /tmp/locks/team-only.txt ]; then \
      /opt/uv/uv pip install --quiet --python /opt/venv/bin/python --require-hashes --no-deps -r /tmp/locks/team-only.txt; fi; \
    /bin/sh /tmp/uv-lib.sh drop-install-clocks /opt/venv

# The operators package (the job operator and the flavor model), also built in parallel into a venv at
# the same path. Its build backend is uv_build, which uv runs itself: offline, from the read-only source,
# in milliseconds.
FROM ${BASE_IMAGE} AS operators-python
ARG SOURCE_DATE_EPOCH
USER 0
RUN --mount=type=bind,from=uv,source=/,target=/opt/uv \
    --mount=type=bind,source=operators,target=/src/operators \
    --mount=type=bind,source=docker/uv-lib.sh,target=/tmp/uv-lib.sh \
    set -eu; \
    export UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never; \
    /opt/uv/uv venv --quiet --python "$(command -v python3)" /opt/venv; \
    UV_COMPILE_BYTECODE=1 /opt/uv/uv pip install --quiet --offline --python /opt/venv/bin/python \
      --no-deps --no-build-isolation /src/operators; \
    /bin/sh /tmp/uv-lib.sh drop-install-clocks /opt/venv

FROM python-deps AS python-platform
COPY --from=team-python /opt/venv/ /opt/venv/
COPY --from=operators-python /opt/venv/ /opt/venv/

# ---------------------------------------------------------------- extend: locks on a vendor image
FROM ${BASE_IMAGE} AS extend-deps
ARG PY_TAG
ARG AIRFLOW_VERSION
ARG AIRFLOW_UID
ARG UV_VERSION
USER 0
ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never
RUN --mount=type=bind,from=uv,source=/,target=/opt/uv \
    --mount=type=bind,from=lock-airflow,source=/lock.txt,target=/tmp/locks/airflow.txt \
    --mount=type=bind,from=lock-team,source=/lock.txt,target=/tmp/locks/team.txt \
    --mount=type=cache,target=/root/.cache/uv,id=uv-py${PY_TAG} \
    --mount=type=secret,id=ca_bundle \
    --mount=type=secret,id=index_url \
    --mount=type=bind,source=docker/uv-lib.sh,target=/tmp/uv-lib.sh \
    set -eu; . /tmp/uv-lib.sh; check_uv_version; pick_python; index_env; \
    /opt/uv/uv pip install --quiet --python "$py" $target --require-hashes -r /tmp/locks/airflow.txt -r /tmp/locks/team.txt; \
    "$py" -c "import airflow, sys; v = airflow.__version__; sys.exit(0 if v == '${AIRFLOW_VERSION}' else 'vendor image has Airflow %s, platform.yaml wants ${AIRFLOW_VERSION}' % v)"; \
    mkdir -p /opt/airflow/platform /opt/airflow/plugins /opt/airflow/dags; \
    id -u airflow >/dev/null 2>&1 || useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /home/airflow --create-home airflow; \
    chown -R "${AIRFLOW_UID}:0" /opt/airflow/platform /opt/airflow/plugins /opt/airflow/dags

# ---------------------------------------------------------------- the platform's own code (both modes)
# (python mode: the team-python, operators-python and python-platform stages above)
FROM extend-deps AS extend-platform
USER 0
# The operators package, installed without touching dependencies where the vendor's Python keeps packages.
RUN --mount=type=bind,from=uv,source=/,target=/opt/uv \
    --mount=type=bind,source=operators,target=/src/operators \
    --mount=type=bind,source=docker/uv-lib.sh,target=/tmp/uv-lib.sh \
    set -eu; . /tmp/uv-lib.sh; pick_python; \
    /opt/uv/uv pip install --quiet --offline --no-cache --python "$py" $target --no-deps --no-build-isolation /src/operators

FROM ${BASE_MODE}-platform AS platform
ARG AIRFLOW_UID
USER 0
# Hardening (issue 20): no setuid/setgid programs (the Debian base's su, mount, passwd, chfn, ...: the
# image runs as AIRFLOW_UID and never changes user or mounts anything; a container escape needs fewer
# footholds), and nothing in /opt/venv writable by group or others (uv leaves its .lock 0666, and the
# airflow user is in group 0). One small layer, cached with the venv. -xdev: only the image's own
# filesystem, not /proc or the build's mounts.
RUN find / -xdev -type f -perm /6000 -exec chmod ug-s {} + \
 && find /opt/venv -xdev -perm /0022 ! -type l -exec chmod go-w {} +
ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    ML_PLATFORM_FLAVORS=/opt/airflow/platform/flavors.yaml
COPY docker/entrypoint.sh /entrypoint
COPY --chown=${AIRFLOW_UID}:0 flavors.yaml /opt/airflow/platform/flavors.yaml
COPY --chown=${AIRFLOW_UID}:0 plugins/ /opt/airflow/plugins/
COPY --chown=${AIRFLOW_UID}:0 dags/ /opt/airflow/dags/
# the YAML the dags were rendered from, as a bundle ships it beside them (the platform page draws it)
COPY --chown=${AIRFLOW_UID}:0 pipelines/ /opt/airflow/pipelines/

# Everything below changes with every commit: keep it last and tiny.
ARG VERSION
ARG REVISION
ARG CREATED
ARG LOCK_FINGERPRINT
ARG AIRFLOW_VERSION
ARG PYTHON_VERSION
ARG SOURCE
ARG TITLE
ARG ML_PLATFORM_SERVES
# The commit, as a file too; and a RUN whose cache key holds the values above: buildah 1.28 serves an ENV or
# LABEL step from its layer cache by the step's text alone (a new commit's image kept the last one's
# revision, in its labels and its history), while a RUN step's key includes the build args in scope, so
# every step below follows them. One small layer per commit with either engine.
RUN printf '%s\n' "${REVISION}" > /opt/airflow/platform/revision
# The build, as the platform plugin shows it (/ml-platform/build): environment, not a file, so no step
# here starts a container.
ENV ML_PLATFORM_IMAGE_VERSION=${VERSION} \
    ML_PLATFORM_IMAGE_REVISION=${REVISION} \
    ML_PLATFORM_IMAGE_CREATED=${CREATED} \
    ML_PLATFORM_AIRFLOW_VERSION=${AIRFLOW_VERSION} \
    ML_PLATFORM_PYTHON_VERSION=${PYTHON_VERSION} \
    ML_PLATFORM_LOCK_FINGERPRINT=${LOCK_FINGERPRINT}
# issue 37: where this image's SBOM is (made from the built image, so found by the image's digest, not in it)
LABEL io.ml-platform.sbom="application/vnd.cyclonedx+json, attached to this image's digest: <repository>:sha256-<digest hex>.sbom (OCI subject: the image), provenance: .att" \
      org.opencontainers.image.title="${TITLE}" \
      org.opencontainers.image.source="${SOURCE}" \
      io.ml-platform.airflow.version="${AIRFLOW_VERSION}" \
      io.ml-platform.python.version="${PYTHON_VERSION}" \
      io.ml-platform.lock.fingerprint="${LOCK_FINGERPRINT}" \
      io.ml-platform.serves="${ML_PLATFORM_SERVES}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
USER ${AIRFLOW_UID}
WORKDIR /opt/airflow
ENTRYPOINT ["/entrypoint"]
CMD ["--help"]
