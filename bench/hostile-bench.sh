#!/usr/bin/env bash
# Pushes each hostile bundle shape of issue 7 section 4 (bench/make-hostile-bundles.mjs) into a fresh docker-registry
# on 127.0.0.1 and prints, per shape: exit code, wall time, peak RSS of the node process (GNU time %M) and the error
# line (or the first failed image). The 6,000-image shapes go into an oci:DIR on local disk, where reading the bundle dominates.
# Acceptance (issue 7): each ends within 10 s, under 300 MB, with a clear one-line message or success. Last, the
# read-time ratio of 6,000 interleaved images to metadata-first.
#
#   bench/hostile-bench.sh [SHAPE...]
# Needs: node (project built), docker-registry, zstd, python3, curl, GNU time (/usr/bin/time).
# MIRROR_NODE=PATH runs mirror on another Node.js than the one on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$ROOT/dist/src/commands/push.js" ] || (cd "$ROOT" && npm run build >/dev/null)
W=$(mktemp -d)
REG_PID=
stop_registry() { [ -z "$REG_PID" ] || { kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; REG_PID=; }; }
trap 'stop_registry; rm -rf "$W"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$W/config.yml" > "$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

node "$ROOT/bench/make-hostile-bundles.mjs" "$W/bundles" "$@" > "$W/list.tsv"
printf '%-36s %4s %8s %9s  %s\n' shape exit seconds 'RSS MB' 'last stderr line'
while IFS=$'\t' read -r name file; do
  ns=$(echo "$name" | tr -c 'a-z0-9\n' '-')
  # 6,000 images are 24,000 requests to a registry: their read time is measured into an OCI layout on local disk.
  case $name in many-*) dest=oci:$W/layout-$ns ;; *) dest=http://127.0.0.1:$port/$ns ;; esac
  if /usr/bin/time -o "$W/time" -f '%e %M' "${MIRROR_NODE:-node}" "$ROOT/bin/run.js" push --source "$file" \
      --private-registry "$dest" >"$W/out" 2>"$W/err" </dev/null; then rc=0; else rc=$?; fi
  read -r secs rss < <(tail -n 1 "$W/time")
  # The error or the first failed image, else the last line.
  last=$(cat "$W/err" "$W/out" | grep -m 1 -E '^(mirror: error:|failed:)' | cut -c1-160 || true)
  [ -n "$last" ] || last=$(cat "$W/err" "$W/out" | grep -v '^\s*$' | tail -n 1 | cut -c1-160)
  printf '%-36s %4s %8s %9s  %s\n' "$name" "$rc" "$secs" "$((rss / 1024))" "$last"
  echo "$name $secs" >> "$W/times"
done < "$W/list.tsv"
i=$(awk '$1=="many-6000-interleaved"{print $2}' "$W/times"); m=$(awk '$1=="many-6000-metadata-first"{print $2}' "$W/times")
[ -z "$i" ] || [ -z "$m" ] || echo "6,000 images, interleaved / metadata-first: $(python3 -c "print(f'{$i/$m:.2f}')")"
