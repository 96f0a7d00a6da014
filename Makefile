# Every target is one `python build.py <command>` call; the only logic here is the venv bootstrap.
# Any platform.yaml value can be overridden per run: make build PYTHON=3.11 BASE_IMAGE=... (make passes
# command-line variables to the commands it runs; an unset or empty one is no override).

HOST_PYTHON ?= python3
HOST_PY := $(shell $(HOST_PYTHON) -c 'import sys; print("%d%d" % sys.version_info[:2])')
VENV    := .venv
PY      := $(VENV)/bin/python
RUN     := $(PY) build.py

.DEFAULT_GOAL := help
# Every target is a command, never a file (a test checks each is listed): `studio` also names a folder.
.PHONY: help doctor venv lock lock-check render render-check schema build push release promote deploy rollback up run down
.PHONY: test unit bench-lock bench-build bench-push bench-parse bench-processor bench-loop bench-render bench-studio
.PHONY: gc clean studio studio-assets studio-assets-check docs docs-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

LOCKS   := requirements/airflow-py$(HOST_PY).txt requirements/team-py$(HOST_PY).txt requirements/dev-py$(HOST_PY).txt

# A missing or hand-edited host lock is named (with the fix) before pip or uv would fail on it.
# Site-packages are byte-compiled as in the image (UV_COMPILE_BYTECODE=1): with PYTHONDONTWRITEBYTECODE set,
# every process would otherwise compile Airflow from source again.
$(VENV)/.synced: $(wildcard $(LOCKS) requirements/tools-py$(HOST_PY).txt) operators/pyproject.toml
	@$(HOST_PYTHON) -m platformctl.lock.bootcheck requirements/tools-py$(HOST_PY).txt $(LOCKS)
	@test -x $(PY) || $(HOST_PYTHON) -m platformctl.host.venvcheck
	test -x $(PY) || $(HOST_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/tools-py$(HOST_PY).txt
	$(VENV)/bin/uv pip sync -q --python $(PY) --require-hashes --compile-bytecode $(LOCKS)
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e operators
	touch $@

doctor: $(VENV)/.synced ## what this host has and lacks for build/test, and the resolved settings with their source
	$(RUN) doctor

venv: $(VENV)/.synced ## create .venv from the host Python's locks (airflow + team + dev)

lock: $(VENV)/.synced ## compile requirements/*.in into hashed locks for every target Python
	$(RUN) lock $(if $(UPGRADE),--upgrade) $(foreach p,$(UPGRADE_PACKAGE),--upgrade-package $(p))

lock-check: $(VENV)/.synced ## fail if any lock is stale or hand-edited (no resolution)
	$(RUN) lock-check

render: $(VENV)/.synced ## render pipelines/*.yaml into dags/*.py (validates every file first)
	$(RUN) render

render-check: $(VENV)/.synced ## fail if dags/ is out of date with pipelines/
	$(RUN) render-check

schema: $(VENV)/.synced ## write JSON Schemas for editors into schemas/
	$(RUN) schema

build: $(VENV)/.synced ## set up this host if needed, lock-check, render-check, build the image, test it
	$(RUN) build

push: $(VENV)/.synced ## push the tested build (version + sha-<7> tags), verify the registry serves its digest
	$(RUN) push

release: $(VENV)/.synced ## make release VERSION=X.Y.Z: immutable release tags on the pushed digest, record, git tag
	$(RUN) release --version $(VERSION)

promote: $(VENV)/.synced ## make promote ENV=prod VERSION=X.Y.Z: copy the release by digest to ENV's repository
	$(RUN) promote --env $(ENV) --version $(VERSION)

deploy: $(VENV)/.synced ## deliver the DAG bundle to ENV (make deploy ENV=dev [IMAGE=<release>]) and write its Airflow config
	$(RUN) deploy --env $(ENV) $(if $(IMAGE),--image $(IMAGE))

rollback: $(VENV)/.synced ## switch ENV back to its previous bundle, or TO=<version> or TO=<ledger entry>
	$(RUN) rollback --env $(ENV) $(if $(TO),--to $(TO))

up: $(VENV)/.synced ## start the local Airflow stack (PostgreSQL + Airflow components) from the built image
	$(RUN) up

run: $(VENV)/.synced ## trigger PIPELINE=<name> on the local stack, follow it, print job states and logs
	$(RUN) run --pipeline $(PIPELINE) $(if $(CONF),--conf '$(CONF)')

down: $(VENV)/.synced ## stop the local stack (VOLUMES=1 also removes its database and logs)
	$(RUN) down $(if $(VOLUMES),--volumes)

test: $(VENV)/.synced ## every test; sets up the host and builds first when needed (PYTEST_ARGS=...)
	$(RUN) test -- $(PYTEST_ARGS)

unit: $(VENV)/.synced ## unit tests only
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench-lock: $(VENV)/.synced ## time make lock (cold, warm) against pip-compile
	$(PY) bench/lock.py

bench-build: $(VENV)/.synced ## build times and sizes against a naive pip image (cold, lock change, plugin change)
	$(PY) bench/build.py

bench-push: $(VENV)/.synced ## no-op push and build reuse against the naive alternatives (local registry)
	$(PY) bench/push.py

bench-parse: $(VENV)/.synced ## DagBag parse time: rendered DAGs vs dag-factory on the same 200 pipelines
	$(PY) bench/parse.py

bench-processor: $(VENV)/.synced ## one loop of the real DAG processor over rendered pipelines: bundle pre-import vs without, vs dag-factory
	$(PY) bench/processor.py

bench-render: $(VENV)/.synced ## make render of one 5,000-job pipeline and of 2,000 small ones; ordering vs the old algorithm
	$(PY) bench/render.py $(ARGS)
bench-studio: $(VENV)/.synced ## the studio in headless Chromium: 200-job draw (with states), edit, open; on a local stack: state latency, API requests/s; vs naive
	$(PY) bench/studio.py $(ARGS)

gc: $(VENV)/.synced ## remove old bundle versions of ENV (keeps KEEP=N newest, the live one, the rollback target)
	$(RUN) gc --env $(ENV) $(if $(KEEP),--keep $(KEEP))
bench-loop: $(VENV)/.synced ## plugin/operator/pipeline edit -> tested image / make run result, against the naive loop
	$(PY) bench/loop.py $(BENCH_LOOP_ARGS)

clean: ## remove the venv and caches
	rm -rf $(VENV) .cache .pytest_cache

studio: $(VENV)/.synced ## edit pipelines as graphs in the browser (127.0.0.1, URL with a per-start token)
	$(RUN) studio

studio-assets: $(VENV)/.synced ## rebuild the studio's committed front-end bundle (npm ci + esbuild; needs Node)
	$(RUN) studio-assets

studio-assets-check: $(VENV)/.synced ## fail if platformctl/studio/static/ differs from a fresh build of studio/
	$(RUN) studio-assets-check

.PHONY: plan status diff bench-status
plan: $(VENV)/.synced ## make plan ENV=dev [VERSION=X.Y.Z] [JSON=1] [GATE=refused]: what deploy/promote would change (exit 0 none, 50 changes, 51 refused)
	$(RUN) plan --env $(ENV) $(if $(VERSION),--version $(VERSION)) $(if $(JSON),--json) $(if $(GATE),--fail-on $(GATE))

status: $(VENV)/.synced ## what runs in every environment (registry + bundle store) and how far apart they are [JSON=1]
	$(RUN) status $(if $(JSON),--json)

diff: $(VENV)/.synced ## make diff FROM=dev TO=prod: configuration and live-state difference between two environments
	$(RUN) diff --from $(FROM) --to $(TO) $(if $(JSON),--json)

bench-status: $(VENV)/.synced ## make status on a local registry + SeaweedFS against the same reads one after another
	$(PY) bench/status.py

.PHONY: migrate
migrate: $(VENV)/.synced ## rewrite pipelines/*.yaml (or FILES=) to the current format version, comments kept; prints the diff
	$(RUN) migrate $(FILES)

# issue 38: bundle trust (signed versions, the deploy ledger)
.PHONY: history signing-key bench-bundle-trust
history: $(VENV)/.synced ## make history ENV=dev [LIMIT=20] [JSON=1]: the deploy ledger, newest first
	$(RUN) history --env $(ENV) $(if $(LIMIT),--limit $(LIMIT)) $(if $(JSON),--json)

signing-key: $(VENV)/.synced ## make signing-key OUT=path: a new ed25519 key pair for signing bundles (prints the public key)
	$(RUN) signing-key --out $(OUT)

bench-bundle-trust: $(VENV)/.synced ## make history over 1,000 ledger entries and signature verification on a 1,000-file version, vs naive
	$(PY) bench/bundle_trust.py

# issue 33: docs/commands.md generated from the CLI's parser, the Makefile and the exit codes
# (.PHONY with the other targets at the top)
docs: $(VENV)/.synced ## write docs/commands.md from the CLI's parser, the Makefile's targets and the exit codes
	$(RUN) docs

docs-check: $(VENV)/.synced ## fail if docs/commands.md is out of date (run make docs)
	$(RUN) docs-check

# ---- Airflow upgrade rehearsal (issue #36) ----
.PHONY: upgrade-test bench-upgrade
upgrade-test: $(VENV)/.synced ## make upgrade-test AIRFLOW=3.3.1 [PYTHON=] [PROVIDERS=all] [APPLY=1]: rehearse an Airflow upgrade, report in build/upgrade/
	$(RUN) upgrade-test --airflow $(AIRFLOW) $(if $(PYTHON),--python $(PYTHON)) $(if $(PROVIDERS),--providers '$(PROVIDERS)') $(if $(APPLY),--apply)

bench-upgrade: $(VENV)/.synced ## relock + comparison for AIRFLOW= (default 3.3.1) against a naive full relock; WHOLE=1 times a whole rehearsal
	$(PY) bench/upgrade.py $(if $(AIRFLOW),--airflow $(AIRFLOW)) $(if $(WHOLE),--whole)

# Issue 39: building without a Docker daemon (ENGINE=podman), reproducibly.
.PHONY: verify-reproducible
verify-reproducible: $(VENV)/.synced ## build HEAD again with no cache (ENGINE=podman) and compare with the build record or REF=
	$(RUN) verify-reproducible $(if $(REF),--ref $(REF))
.PHONY: bench-engines
bench-engines: $(VENV)/.synced ## podman (buildah) build against the Docker build: cold, plugin edit, reproducible rebuild
	$(PY) bench/engines.py

# ---- Fleet bundle fetch (issue #34, bundle-fetch part) ----
.PHONY: bench-fleet
bench-fleet: $(VENV)/.synced ## bundle store cost for a DAG processor + 1/2/4 workers behind a 20 ms store (SeaweedFS), vs one GET per file
	$(PY) bench/fleet.py
# ---- issue 37: trust the image (SBOM, provenance, signatures, vulnerability gate); see docs/supply-chain.md
.PHONY: sbom audit verify-image image-key bench-supply
sbom: $(VENV)/.synced ## where the image's SBOM (CycloneDX) is, and a summary; FORCE=1 makes it again
	$(RUN) sbom $(if $(FORCE),--force)

audit: $(VENV)/.synced ## pip-audit every lock against the OSV service (audit.osv_url), gated by audit.yaml [JSON=1]
	$(RUN) audit $(if $(JSON),--json)

verify-image: $(VENV)/.synced ## make verify-image ENV=prod DIGEST=sha256:...: signature (skopeo), SBOM, provenance
	$(RUN) verify-image --env $(ENV) --digest $(DIGEST) $(if $(REPOSITORY),--repository $(REPOSITORY))

image-key: $(VENV)/.synced ## make image-key ENV=prod [NAME=release-2026] [PASSPHRASE_FILE=]: a GPG key signing ENV's images; enables signatures.required
	$(RUN) image-key --env $(ENV) $(if $(NAME),--name $(NAME)) $(if $(PASSPHRASE_FILE),--passphrase-file $(PASSPHRASE_FILE))

bench-supply: $(VENV)/.synced ## cost of SBOM + provenance + signature on make push, and of make audit (local OSV)
	$(PY) bench/supply.py
