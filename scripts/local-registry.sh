#!/usr/bin/env bash
# Start a local OCI registry (Debian's docker-registry, distribution 2.8) with htpasswd auth, for
# trying make push / release / promote on one machine.
# Usage: REGISTRY_USERNAME=dev REGISTRY_PASSWORD=... scripts/local-registry.sh [ADDR] [DIR]
set -euo pipefail
addr=${1:-127.0.0.1:5000}
dir=${2:-.platform/registry}
: "${REGISTRY_USERNAME:?set REGISTRY_USERNAME}" "${REGISTRY_PASSWORD:?set REGISTRY_PASSWORD}"
command -v docker-registry >/dev/null || { echo "install it: apt-get install docker-registry apache2-utils" >&2; exit 1; }
if curl -s -o /dev/null "http://$addr/v2/"; then echo "a registry already answers on $addr"; exit 0; fi
mkdir -p "$dir/data"
htpasswd -Bbn "$REGISTRY_USERNAME" "$REGISTRY_PASSWORD" > "$dir/htpasswd"
cat > "$dir/config.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $(cd "$dir" && pwd)/data}
  delete: {enabled: true}
http: {addr: $addr}
auth:
  htpasswd: {realm: local, path: $(cd "$dir" && pwd)/htpasswd}
YAML
nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
for _ in $(seq 50); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v2/")" = 401 ] && { echo "registry on $addr (log: $dir/registry.log)"; exit 0; }
  sleep 0.1
done
echo "registry did not start: $(tail -5 "$dir/registry.log")" >&2; exit 1
