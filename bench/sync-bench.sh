#!/usr/bin/env bash
# Times `mirror sync` side by side with `skopeo sync` on the same skopeo sync YAML, in interleaved rounds, each into a
# fresh docker-registry on 127.0.0.1 (medians and ratios), with only public tools: skopeo, docker-registry, GNU time.
#
#   bench/sync-bench.sh [BUNDLE_DIR] [ROUNDS] [SMALL_ROUNDS]
#
# 1. The bench bundles' images (BUNDLE_DIR/layout, made by ../shared/bench/make-bench-bundles.sh when missing) are
#    pushed into a source registry, each under 3 tags. Per round: a full sync and an unchanged re-sync, by skopeo
#    (`skopeo sync --all`) and by mirror, the order alternating. Blob requests are counted from the registries'
#    access logs. After the last round: one tag changed upstream, mirror syncs again (only its new blobs move), and
#    every synced image is read back by skopeo and compared with its source digest.
# 2. Directories, on the same images (ROUNDS rounds, alternating): `--dest dir` into a new directory by both tools
#    (the trees compared file by file), then `--src dir` of mirror's tree into a new registry by both tools (read back).
# 3. 2,000 tags over 200 repositories of small images (bench/make-small-images.mjs): the same full/unchanged pair by
#    both tools (SMALL_ROUNDS rounds), peak RSS, 2 mirror shards side by side, and every image read back by skopeo.
# SYNC_JOBS=N passes --jobs N to mirror (images in flight; default: mirror's own).
# MIRROR_NODE=PATH runs mirror on another Node.js than the one on PATH (Node 24, the LTS users run, say).
# Needs: node (project built), docker-registry, skopeo, python3, curl, GNU time (/usr/bin/time).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
B=${1:-$ROOT/.bench/bundles}
ROUNDS=${2:-3}
SMALL_ROUNDS=${3:-1}
[ -d "$B/layout" ] || bash "$SHARED/bench/make-bench-bundles.sh" "$B"
[ -f "$ROOT/dist/src/commands/sync.js" ] || (cd "$ROOT" && npm run build >/dev/null)
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
RESULTS=$W/results.tsv; : > "$RESULTS"
MIRROR_NODE=${MIRROR_NODE:-node} # the Node.js that runs mirror (default: node on PATH; Node 24 is the LTS users run)
echo "mirror runs on Node $("$MIRROR_NODE" --version)"
MIRROR=("$MIRROR_NODE" "$ROOT/bin/run.js")
export HOME=$W/home; mkdir -p "$HOME"

# start_registry NAME: a docker-registry with its access log; sets ${NAME}_HOST, ${NAME}_DIR, ${NAME}_PID.
start_registry() {
  local name=$1 port dir
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$(mktemp -d -p "$W")
  cat > "$dir/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
EOF
  docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  printf -v "${name}_HOST" '%s' "127.0.0.1:$port"
  printf -v "${name}_DIR" '%s' "$dir"
  printf -v "${name}_PID" '%s' "$pid"
}
stop_registry() {
  local name=$1 pid dir
  pid=${name}_PID; dir=${name}_DIR
  kill "${!pid}" 2>/dev/null || true; wait "${!pid}" 2>/dev/null || true
  rm -rf "${!dir}"
}
# log_lines NAME: lines in a registry's access log so far.
log_lines() { local dir=${1}_DIR; wc -l < "${!dir}/log"; }
# blob_requests NAME FROM: blob requests in the access log after line FROM.
blob_requests() { local dir=${1}_DIR; tail -n +"$(( $2 + 1 ))" "${!dir}/log" | grep -c '"[A-Z]* /v2/[^ ]*/blobs/' || true; }

# retag HOST REPO TAG TO_REPO TO_TAG: puts the manifest of REPO:TAG under TO_REPO:TO_TAG (same registry, blobs mounted before).
retag() {
  local ct
  ct=$(curl -fsS -o "$W/manifest" -w '%{content_type}' -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' "http://$1/v2/$2/manifests/$3")
  curl -fsS -X PUT -H "Content-Type: $ct" --data-binary "@$W/manifest" "http://$1/v2/$4/manifests/$5" -o /dev/null
}
# measure CASE NAME CMD...: one timed run (wall seconds, peak RSS in KB of the largest process), appended to results.
measure() {
  local case=$1 name=$2; shift 2
  local tf=$W/time.$$ rc
  sync
  if /usr/bin/time -o "$tf" -f '%e %M' "$@" > "$W/out.log" 2>&1; then rc=0; else rc=$?; fi
  read -r secs rss < <(tail -n 1 "$tf")
  printf '%s\t%s\t%s\t%s\t%s\n' "$case" "$name" "$secs" "$rss" "$rc" >> "$RESULTS"
  [ "$rc" = 0 ] || { echo "  $case $name failed (exit $rc):"; tail -n 5 "$W/out.log"; }
  LAST_SECS=$secs
}
note() { printf '%s\t%s\t%s\t\t\n' "$1" "$2" "$3" >> "$RESULTS"; }

# read_back SRC DST NS YAML_LIST: every synced tag read back by skopeo, its digest compared with the source's.
read_back() {
  local src=$1 dst=$2 ns=$3 list=$4 bad
  bad=$(while read -r repo tag; do echo "$repo $tag"; done < "$list" | xargs -P 8 -n 2 sh -c '
    a=$(skopeo inspect --raw --tls-verify=false "docker://'"$src"'/$0:$1" | sha256sum | cut -d" " -f1)
    b=$(skopeo inspect --raw --tls-verify=false "docker://'"$dst"'/'"$ns"'/${0##*/}:$1" 2>/dev/null | sha256sum | cut -d" " -f1)
    [ "$a" = "$b" ] || echo "$0:$1"' | wc -l)
  echo "$(wc -l < "$list") images read back by skopeo, $bad with another digest"
  note readback "$ns" "$(wc -l < "$list") read back, $bad differ"
}

echo "== source: the bench bundles' images, 3 tags each"
start_registry SRC
"${MIRROR[@]}" push --source "$B/layout" --private-registry "http://$SRC_HOST" --need-credential=false > /dev/null
python3 - "$B/layout/index.json" > "$W/images.txt" <<'PY'
import json, sys
for m in json.load(open(sys.argv[1]))['manifests']:
    ref = m['annotations']['io.containerd.image.name']
    name, tag = ref.rsplit(':', 1)
    print(name.split('/', 1)[1], tag)
PY
: > "$W/tags.txt"
while read -r repo tag; do
  for extra in "$tag" "$tag-a" "$tag-b"; do
    [ "$extra" = "$tag" ] || retag "$SRC_HOST" "$repo" "$tag" "$repo" "$extra"
    echo "$repo $extra" >> "$W/tags.txt"
  done
done < "$W/images.txt"
{ echo "$SRC_HOST:"; echo "  tls-verify: false"; echo "  images:"; cut -d' ' -f1 "$W/images.txt" | sort -u | sed 's/^/    /; s/$/: []/'; } > "$W/bundles.yaml"
echo "$(wc -l < "$W/tags.txt") tags in $(cut -d' ' -f1 "$W/images.txt" | sort -u | wc -l) repositories"

SKOPEO_SYNC=(skopeo sync --all --src yaml --dest docker --dest-tls-verify=false)
MIRROR_SYNC=("${MIRROR[@]}" sync ${SYNC_JOBS:+--jobs "$SYNC_JOBS"} --src yaml --dest docker --dest-tls-verify=false --no-lock)
one_round() { # one_round CASE YAML TOOL
  local case=$1 yaml=$2 tool=$3 from
  start_registry DST
  if [ "$tool" = skopeo ]; then measure "$case" skopeo-full "${SKOPEO_SYNC[@]}" "$yaml" "$DST_HOST/ns"
  else measure "$case" mirror-full "${MIRROR_SYNC[@]}" "$yaml" "$DST_HOST/ns"; fi
  from=$(log_lines DST); local sfrom; sfrom=$(log_lines SRC)
  if [ "$tool" = skopeo ]; then measure "$case" skopeo-unchanged "${SKOPEO_SYNC[@]}" "$yaml" "$DST_HOST/ns"
  else measure "$case" mirror-unchanged "${MIRROR_SYNC[@]}" "$yaml" "$DST_HOST/ns"; fi
  note "$case" "$tool-unchanged-blob-requests" "$(( $(blob_requests DST "$from") + $(blob_requests SRC "$sfrom") ))"
}
for r in $(seq 1 "$ROUNDS"); do
  echo "== bundles, round $r"
  if [ $(( r % 2 )) = 1 ]; then one_round bundles "$W/bundles.yaml" skopeo; stop_registry DST; one_round bundles "$W/bundles.yaml" mirror
  else one_round bundles "$W/bundles.yaml" mirror; stop_registry DST; one_round bundles "$W/bundles.yaml" skopeo; fi
  [ "$r" = "$ROUNDS" ] || stop_registry DST
done
# The destination of the last round is kept; make it mirror's.
if [ $(( ROUNDS % 2 )) = 0 ]; then stop_registry DST; one_round bundles "$W/bundles.yaml" mirror; fi

echo "== one changed tag: only its new blobs move"
read -r crepo ctag < <(sed -n 5p "$W/images.txt")
read -r orepo otag < <(sed -n 6p "$W/images.txt")
for b in $(skopeo inspect --raw --tls-verify=false "docker://$SRC_HOST/$orepo:$otag" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["config"]["digest"], *[l["digest"] for l in m["layers"]])'); do
  curl -fsS -X POST "http://$SRC_HOST/v2/$crepo/blobs/uploads/?mount=$b&from=$orepo" -o /dev/null
done
retag "$SRC_HOST" "$orepo" "$otag" "$crepo" "$ctag"
new_bytes=$(skopeo inspect --raw --tls-verify=false "docker://$SRC_HOST/$orepo:$otag" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["config"]["size"]+sum(l["size"] for l in m["layers"]))')
from=$(log_lines DST)
measure changed mirror-one-changed "${MIRROR_SYNC[@]}" --json "$W/bundles.yaml" "$DST_HOST/ns"
sent=$(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(d["bytes"], d["counts"]["copied"], d["counts"]["skipped"])' "$W/out.log")
note changed "bytes-sent copied skipped" "$sent (the changed image's blobs: $new_bytes bytes)"
note changed blob-uploads "$(tail -n +"$(( from + 1 ))" "$DST_DIR/log" | grep -c '"PUT /v2/[^ ]*/blobs/uploads' || true)"
echo "  sent, copied, skipped: $sent; the changed image's blobs: $new_bytes bytes"
read_back "$SRC_HOST" "$DST_HOST" ns "$W/tags.txt"
stop_registry DST

echo "== directories: --dest dir into a new DIR, then --src dir into a new registry, each run"
# skopeo refuses an existing destination directory, so each --dest dir run starts from none; each --src dir run
# copies into a fresh registry (on a new port: skopeo's blob-info cache knows nothing of it).
SKOPEO_TO_DIR=(skopeo sync --all --src yaml --dest dir)
MIRROR_TO_DIR=("${MIRROR[@]}" sync ${SYNC_JOBS:+--jobs "$SYNC_JOBS"} --src yaml --dest dir --no-lock)
SKOPEO_FROM_DIR=(skopeo sync --all --src dir --dest docker --dest-tls-verify=false)
MIRROR_FROM_DIR=("${MIRROR[@]}" sync ${SYNC_JOBS:+--jobs "$SYNC_JOBS"} --src dir --dest docker --dest-tls-verify=false --no-lock)
for r in $(seq 1 "$ROUNDS"); do
  echo "== directories, round $r"
  if [ $(( r % 2 )) = 1 ]; then order="skopeo mirror"; else order="mirror skopeo"; fi
  for tool in $order; do
    rm -rf "$W/dir-$tool"
    if [ "$tool" = skopeo ]; then measure dirs skopeo-dest-dir "${SKOPEO_TO_DIR[@]}" "$W/bundles.yaml" "$W/dir-skopeo"
    else measure dirs mirror-dest-dir "${MIRROR_TO_DIR[@]}" "$W/bundles.yaml" "$W/dir-mirror"; fi
  done
  for tool in $order; do
    start_registry DST
    if [ "$tool" = skopeo ]; then measure dirs skopeo-src-dir "${SKOPEO_FROM_DIR[@]}" "$W/dir-mirror" "$DST_HOST/ns"
    else measure dirs mirror-src-dir "${MIRROR_FROM_DIR[@]}" "$W/dir-mirror" "$DST_HOST/ns"; fi
    stop_registry DST
  done
done
differ=$(diff -rq "$W/dir-skopeo" "$W/dir-mirror" | wc -l || true)
note dirs dest-dir-trees "$(find "$W/dir-mirror" -name manifest.json | wc -l) images; files differing from skopeo's: $differ; disk: mirror $(du -sm "$W/dir-mirror" | cut -f1) MB (shared blobs linked), skopeo $(du -sm "$W/dir-skopeo" | cut -f1) MB"
echo "  trees: $differ files differ from skopeo's"
start_registry DST
"${MIRROR_FROM_DIR[@]}" "$W/dir-mirror" "$DST_HOST/ns" > /dev/null
read_back "$SRC_HOST" "$DST_HOST" ns "$W/tags.txt"
stop_registry DST
rm -rf "$W/dir-skopeo" "$W/dir-mirror"

echo "== 2,000 tags over 200 repositories"
node "$ROOT/bench/make-small-images.mjs" "$W/small" "${SMALL_REPOS:-200}" "${SMALL_TAGS:-10}"
start_registry SMALL
"${MIRROR[@]}" push --source "$W/small" --private-registry "http://$SMALL_HOST" --need-credential=false --jobs 8 > /dev/null
{ echo "$SMALL_HOST:"; echo "  tls-verify: false"; echo "  images:"; for i in $(seq 0 $(( ${SMALL_REPOS:-200} - 1 ))); do printf '    small/repo-%03d: []\n' "$i"; done; } > "$W/small.yaml"
for i in $(seq 0 $(( ${SMALL_REPOS:-200} - 1 ))); do for t in $(seq 0 $(( ${SMALL_TAGS:-10} - 1 ))); do printf 'small/repo-%03d 1.0.%d\n' "$i" "$t"; done; done > "$W/small-tags.txt"
SRC_DIR_SAVED=$SRC_DIR; SRC_DIR=$SMALL_DIR  # blob counts below look at the small source's log
for r in $(seq 1 "$SMALL_ROUNDS"); do
  echo "== 2,000 tags, round $r"
  one_round small "$W/small.yaml" mirror; stop_registry DST
  one_round small "$W/small.yaml" skopeo; stop_registry DST
done
echo "== 2,000 tags: 2 shards side by side"
start_registry DST
t0=$(date +%s.%N)
measure shards shard-0 "${MIRROR_SYNC[@]}" --shard 0/2 "$W/small.yaml" "$DST_HOST/ns" &
s0=$!
sleep 0.05
/usr/bin/time -o "$W/time.s1" -f '%e %M' "${MIRROR_SYNC[@]}" --shard 1/2 "$W/small.yaml" "$DST_HOST/ns" > "$W/out1.log" 2>&1 || echo "  shard 1 failed"
wait "$s0"
t1=$(date +%s.%N)
read -r s1secs s1rss < "$W/time.s1"
printf 'shards\tshard-1\t%s\t%s\t0\n' "$s1secs" "$s1rss" >> "$RESULTS"
note shards wall-both "$(python3 -c "print(round($t1 - $t0, 2))")"
read_back "$SMALL_HOST" "$DST_HOST" ns "$W/small-tags.txt"
stop_registry DST; SRC_DIR=$SRC_DIR_SAVED

echo
echo "== results (medians of the rounds; seconds, peak RSS in MB)"
python3 - "$RESULTS" <<'PY'
import statistics, sys, collections
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1]) if l.strip()]
timed = collections.defaultdict(list); notes = collections.defaultdict(list)
for r in rows:
    case, name, secs = r[0], r[1], r[2]
    if len(r) >= 5 and r[3] != '':
        timed[(case, name)].append((float(secs), int(r[3]) / 1024, r[4]))
    else:
        notes[(case, name)].append(secs)
med = {}
for (case, name), v in sorted(timed.items()):
    s = statistics.median(x[0] for x in v); m = max(x[1] for x in v)
    med[(case, name)] = s
    fails = sum(1 for x in v if x[2] != '0')
    each = f"  ({', '.join(f'{x[0]:.2f}' for x in v)})" if len(v) > 1 else ''
    print(f"{case:8} {name:22} {s:8.2f} s  {m:7.1f} MB  runs {len(v)}{'  FAILED ' + str(fails) if fails else ''}{each}")
for (case, name), v in sorted(notes.items()):
    print(f"{case:8} {name:22} {', '.join(v)}")
for case, kinds in (('bundles', ('full', 'unchanged')), ('small', ('full', 'unchanged')), ('dirs', ('dest-dir', 'src-dir'))):
    for kind in kinds:
        a, b = med.get((case, f'mirror-{kind}')), med.get((case, f'skopeo-{kind}'))
        if a and b: print(f"ratio {case} {kind}: mirror/skopeo = {a / b:.2f}")
PY
