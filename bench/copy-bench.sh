#!/usr/bin/env bash
# Times `mirror copy --all` side by side with `skopeo copy --all` between two docker-registry instances on 127.0.0.1,
# in interleaved rounds (the order alternates), each copy into a fresh destination registry; reports medians and
# ratios, counts requests from the registries' access logs (log.accesslog) and from a recording proxy, and reads the
# client's own CPU, peak RSS and local disk writes from GNU time (%U %S %M %O). Public tools only: docker-registry,
# skopeo, GNU time, curl, python3, and node for the project and the helpers beside this script.
#
#   bench/copy-bench.sh [BUNDLE_DIR] [ROUNDS] [BIG_ROUNDS]
#
# BUNDLE_DIR (default .bench/bundles; made by ../shared/bench/make-bench-bundles.sh when missing) holds `layout`, whose
# images are pushed once into the source registry. Then:
#  1. per round and tool, into a fresh registry: every image copied by its own command, as a user scripts it
#     (times per image and for the whole set); then the same loop again, unchanged (requests counted); then, into
#     another fresh registry, a multi-platform index made of the bench images (bench/make-bench-index.mjs: 6 platforms)
#     and its unchanged re-copy, with --referrers=false and with the default (referrers looked up);
#  2. within the source registry: the index copied to another repository (uploads and request bytes counted by a
#     recording proxy, bench/bench-proxy.mjs; the registry's blob store measured before and after);
#  3. the index copied through a proxy that cuts the GET of its largest layer at 60% (bytes fetched again);
#     Each round also times the floor of the index copy: its largest layer alone, PUT by curl from a local file into
#     a fresh registry (what the destination needs for that one blob, whoever the client), and the whole index copied
#     by curl alone (every blob GET piped into a PUT at once, nothing verified, no start-up);
#  4. an image with one 2 GiB layer (bench/make-big-image.mjs), BIG_ROUNDS rounds: time, peak RSS, disk written, CPU;
#     the client's CPU per GB moved, start-up excluded two ways (minus `mirror --version`, and minus an unchanged
#     re-copy of the same image, which pays start-up, connection and manifest requests but moves no byte).
# BIG_ROUNDS=0 skips 4. The load average is sampled at every timed run and reported with the figures.
# MIRROR_NODE=PATH runs mirror on another Node.js than the one on PATH (Node 24, the LTS users run, say).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
B=${1:-$ROOT/.bench/bundles}
ROUNDS=${2:-5}
BIG_ROUNDS=${3:-3}
[ -d "$B/layout" ] || bash "$SHARED/bench/make-bench-bundles.sh" "$B"
[ -f "$ROOT/dist/src/commands/copy.js" ] || (cd "$ROOT" && npm run build >/dev/null)
W=$(mktemp -d)
PIDS=()
KEEP=${KEEP:-$ROOT/.bench/copy-results.tsv} # the raw rows, kept for a second look at the figures
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; cp "$W/results.tsv" "$KEEP" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
RESULTS=$W/results.tsv; : > "$RESULTS"
export HOME=$W/home; mkdir -p "$HOME"  # no credentials, keychain or cache of the user's
MIRROR_NODE=${MIRROR_NODE:-node} # the Node.js that runs mirror (default: node on PATH; Node 24 is the LTS users run)
echo "mirror runs on Node $("$MIRROR_NODE" --version)"
MIRROR=("$MIRROR_NODE" "$ROOT/bin/run.js")
M_COPY=("${MIRROR[@]}" copy -q --all --src-tls-verify=false --dest-tls-verify=false)
S_COPY=(skopeo copy -q --all --src-tls-verify=false --dest-tls-verify=false)
TIMEFMT='%e %M %O %U %S'

# start_registry NAME: a docker-registry with its access log on a free port; sets ${NAME}_HOST, ${NAME}_DIR, ${NAME}_PID.
start_registry() {
  local name=$1 port dir pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$(mktemp -d -p "$W")
  cat > "$dir/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
EOF
  docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  printf -v "${name}_HOST" '%s' "127.0.0.1:$port"
  printf -v "${name}_DIR" '%s' "$dir"
  printf -v "${name}_PID" '%s' "$pid"
}
# Each registry's storage goes with it, so that no run pays for writing back the last one's data.
stop_registry() {
  local pid=${1}_PID dir=${1}_DIR
  kill "${!pid}" 2>/dev/null || true; wait "${!pid}" 2>/dev/null || true
  rm -rf "${!dir}"
}
log_lines() { local dir=${1}_DIR; wc -l < "${!dir}/log"; }
# cpu_of PID: CPU seconds (user+sys) a process has used so far.
cpu_of() { awk '{printf "%.2f\n", ($14+$15)/100}' "/proc/$1/stat"; }

# requests NAME FROM: the requests in a registry's access log after line FROM, counted by kind (one line of k=v).
cat > "$W/classify.py" <<'PY'
import collections, re, sys
c = collections.Counter()
for line in open(sys.argv[1], errors='replace').read().splitlines()[int(sys.argv[2]):]:
    m = re.search(r'"([A-Z]+) (/v2/\S*) HTTP/[0-9.]+" (\d+)', line)
    if not m: continue
    method, path, status = m.groups()
    p = path.split('?')[0]
    if p == '/v2/': k = 'ping'
    elif '/manifests/' in p: k = f'manifest-{method}'
    elif '/blobs/uploads' in p: k = 'mount' if method == 'POST' and 'mount=' in path else f'upload-{method}'
    elif '/blobs/' in p: k = f'blob-{method}'
    elif '/referrers/' in p: k = 'referrers-GET'
    elif p.endswith('/tags/list'): k = 'tags-GET'
    else: k = f'other-{method}'
    c[k] += 1
print(' '.join(f'{k}={v}' for k, v in sorted(c.items())) or 'none')
PY
requests() { local dir=${1}_DIR; python3 "$W/classify.py" "${!dir}/log" "$2"; }

# Figures from the recording proxy's log (JSON on stdin).
cat > "$W/same.py" <<'PY'
import json, sys
rs = json.load(sys.stdin)
up = [r for r in rs if '/blobs/uploads' in r['path'] and r['method'] in ('PATCH', 'PUT')]
opened = sum(1 for r in rs if r['method'] == 'POST' and r['status'] == 202)
mounted = sum(1 for r in rs if r['method'] == 'POST' and r['status'] == 201)
gets = sum(1 for r in rs if r['method'] == 'GET' and '/blobs/' in r['path'])
print(f"upload requests (PATCH/PUT) {len(up)}, bytes in them {sum(r['bytesIn'] for r in up)}, upload sessions opened {opened}, "
      f"mounts answered 201 {mounted}, blob GETs {gets}, request body bytes in all {sum(r['bytesIn'] for r in rs)}")
PY
cat > "$W/cut.py" <<'PY'
import json, sys
layer, size, cut = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gets = [r for r in json.load(sys.stdin) if r['method'] == 'GET' and r['path'].endswith(layer)]
total = sum(r['bytesOut'] for r in gets)
ranges = [r.get('range') or '-' for r in gets]
print(f"layer of {size} bytes cut at {cut}: {len(gets)} GETs (Range: {', '.join(ranges)}), {total} bytes fetched, "
      f"{total - size} fetched again ({100 * (total - size) / size:.1f}% of the layer)")
PY

# measure CASE TOOL CMD...: one timed run appended to the results (wall s, peak RSS KB, disk blocks, user s, sys s,
# exit code, 1-minute load average when it started). The command's output is kept in $W/out.log.
measure() {
  local case=$1 tool=$2; shift 2
  local tf=$W/time.$$ rc load
  sync # no dirty pages of earlier runs waiting to be written
  load=$(cut -d' ' -f1 /proc/loadavg)
  if /usr/bin/time -o "$tf" -f "$TIMEFMT" "$@" > "$W/out.log" 2>&1; then rc=0; else rc=$?; fi
  read -r secs rss blocks user sys < <(tail -n 1 "$tf")
  printf 'T\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$tool" "$secs" "$rss" "$blocks" "$user" "$sys" "$rc" "$load" >> "$RESULTS"
  [ "$rc" = 0 ] || { echo "  $case $tool failed (exit $rc):"; tail -n 5 "$W/out.log"; }
  LAST_SECS=$secs
}
# note CASE KEY VALUE: a counted figure.
note() { printf 'N\t%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; }

echo "== source: the bench images ($(uptime | sed 's/.*load/load/'))"
start_registry SRC
"${MIRROR[@]}" push -q --source "$B/layout" --private-registry "http://$SRC_HOST" --need-credential=false > /dev/null
python3 - "$B/layout/index.json" > "$W/images.txt" <<'PY'
import json, sys
for m in json.load(open(sys.argv[1]))['manifests']:
    name, tag = m['annotations']['io.containerd.image.name'].rsplit(':', 1)
    print(name.split('/', 1)[1], tag, m['digest'])
PY
# The index: the four large images (a Debian base shared by three of them) and two small ones, as six platforms.
mapfile -t INDEX_IMAGES < <(head -n 6 "$W/images.txt" | awk '{print $1 ":" $2}')
node "$ROOT/bench/make-bench-index.mjs" "http://$SRC_HOST" bench/multi all "${INDEX_IMAGES[@]}" > "$W/index.json"
INDEX_DIGEST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$W/index.json")
INDEX_BYTES=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$W/index.json")
echo "$(wc -l < "$W/images.txt") images; index bench/multi:all $INDEX_DIGEST: $(cat "$W/index.json")"
note setup index "$(cat "$W/index.json")"

# copy_set TOOL CASE DST: every image by its own command, as a user scripts it; CASE-<n> per image, CASE the loop.
copy_set() {
  local tool=$1 case=$2 t0 t1 n=0
  t0=$(date +%s.%N)
  while read -r repo tag _; do
    n=$((n + 1))
    if [ "$tool" = mirror ]; then measure "$case-$n" "$tool" "${M_COPY[@]}" "${@:3}" "docker://$SRC_HOST/$repo:$tag" "docker://$DST_HOST/$repo:$tag"
    else measure "$case-$n" "$tool" "${S_COPY[@]}" "docker://$SRC_HOST/$repo:$tag" "docker://$DST_HOST/$repo:$tag"; fi
  done < "$W/images.txt"
  t1=$(date +%s.%N)
  printf 'T\t%s\t%s\t%s\t\t\t\t\t0\t%s\n' "$case" "$tool" "$(python3 -c "print(round($t1 - $t0, 2))")" "$(cut -d' ' -f1 /proc/loadavg)" >> "$RESULTS"
}
# copy_index TOOL CASE [FLAGS...]: the index into DST, its registry CPU noted.
copy_index() {
  local tool=$1 case=$2 s0 d0; shift 2
  s0=$(cpu_of "$SRC_PID"); d0=$(cpu_of "$DST_PID")
  if [ "$tool" = mirror ]; then measure "$case" "$tool" "${M_COPY[@]}" "$@" "docker://$SRC_HOST/bench/multi:all" "docker://$DST_HOST/bench/multi:all"
  else measure "$case" "$tool" "${S_COPY[@]}" "docker://$SRC_HOST/bench/multi:all" "docker://$DST_HOST/bench/multi:all"; fi
  note "$case" "$tool registries CPU s (source destination)" "$(python3 -c "print(round($(cpu_of "$SRC_PID") - $s0, 2), round($(cpu_of "$DST_PID") - $d0, 2))")"
}
# counted CASE TOOL CMD...: a run whose requests on each side are counted from the access logs.
counted() {
  local case=$1 tool=$2 sf df; shift 2
  sf=$(log_lines SRC); df=$(log_lines DST)
  "$@"
  note "$case" "$tool source requests" "$(requests SRC "$sf")"
  note "$case" "$tool destination requests" "$(requests DST "$df")"
}

one_round() { # one_round TOOL ROUND
  local tool=$1 r=$2
  # The tool's start-up alone (a process that prints its version): what every per-image command pays before any request.
  if [ "$tool" = mirror ]; then measure version mirror "${MIRROR[@]}" --version; else measure version skopeo skopeo --version; fi
  start_registry DST
  copy_set "$tool" set
  if [ "$tool" = mirror ]; then
    counted set-unchanged mirror copy_set mirror set-unchanged --referrers=false
    [ "$r" != 1 ] || counted set-unchanged-referrers mirror copy_set mirror set-unchanged-referrers
  else
    counted set-unchanged skopeo copy_set skopeo set-unchanged
  fi
  stop_registry DST
  start_registry DST
  counted index "$tool" copy_index "$tool" index
  if [ "$tool" = mirror ]; then
    counted index-unchanged mirror copy_index mirror index-unchanged --referrers=false
    counted index-unchanged-referrers mirror copy_index mirror index-unchanged-referrers
  else
    counted index-unchanged skopeo copy_index skopeo index-unchanged
  fi
  stop_registry DST
}
# The floor of the index copy: its largest layer alone, sent by curl from a local file into a fresh registry (POST,
# then one PUT with the body). No client copies the index faster than the destination takes that one blob; the
# results set 0.7 x skopeo's index time beside it.
read -r LARGEST LARGEST_SIZE < <(python3 - "http://$SRC_HOST" <<'PY'
import json, sys, urllib.request
base = sys.argv[1] + '/v2/bench/multi/manifests/'
accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'
get = lambda ref: json.load(urllib.request.urlopen(urllib.request.Request(base + ref, headers={'Accept': accept})))
layers = [l for m in get('all')['manifests'] for l in get(m['digest'])['layers']]
big = max(layers, key=lambda l: l['size'])
print(big['digest'], big['size'])
PY
)
curl -fsS "http://$SRC_HOST/v2/bench/multi/blobs/$LARGEST" -o "$W/largest-layer"
cat > "$W/put-one.sh" <<'SH'
# put-one.sh HOST FILE DIGEST: POST an upload, PUT the file as its body.
loc=$(curl -fsS -X POST -D - -o /dev/null "http://$1/v2/floor/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
case $loc in http*) ;; *) loc="http://$1$loc" ;; esac
case $loc in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" "${loc}digest=$3"
SH
note index-floor "largest layer" "$LARGEST, $LARGEST_SIZE bytes"
# The whole index copied by curl alone, nothing verified and nothing started but curl: every blob at once (POST, then
# GET from the source piped into one PUT), then the platforms' manifests at once, then the index. Its manifests are
# fetched before the clock starts. What the two registries on this machine's cores allow a client that only moves
# bytes; the results set it beside 0.7 x skopeo's time.
mkdir -p "$W/curl-index"
python3 - "http://$SRC_HOST" "$W/curl-index" <<'PY'
import json, os, sys, urllib.request
base, out = sys.argv[1] + '/v2/bench/multi/manifests/', sys.argv[2]
accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'
def get(ref, name):
    with urllib.request.urlopen(urllib.request.Request(base + ref, headers={'Accept': accept})) as r:
        body = r.read()
        open(os.path.join(out, name), 'wb').write(body)
        open(os.path.join(out, name + '.type'), 'w').write(r.headers['Content-Type'])
        return json.loads(body)
blobs = set()
for m in get('all', 'index')['manifests']:
    child = get(m['digest'], 'child-' + m['digest'].split(':')[1])
    blobs.update(d['digest'] for d in [child['config']] + child['layers'])
open(os.path.join(out, 'blobs'), 'w').write('\n'.join(sorted(blobs)) + '\n')
PY
cat > "$W/curl-index.sh" <<'SH'
# curl-index.sh SRC DST DIR: bench/multi:all from SRC to DST by curl, from the manifests in DIR.
set -e
one_blob() {
  loc=$(curl -fsS -X POST -D - -o /dev/null "http://$2/v2/bench/multi/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
  case $loc in http*) ;; *) loc="http://$2$loc" ;; esac
  case $loc in *\?*) loc="$loc&" ;; *) loc="$loc?" ;; esac
  curl -fsS "http://$1/v2/bench/multi/blobs/$3" | curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T - "${loc}digest=$3"
}
put_manifest() { curl -fsS -o /dev/null -X PUT -H "Content-Type: $(cat "$2.type")" --data-binary "@$2" "http://$1/v2/bench/multi/manifests/$3"; }
pids=()
while read -r b; do one_blob "$1" "$2" "$b" & pids+=($!); done < "$3/blobs"
for p in "${pids[@]}"; do wait "$p"; done
pids=()
for f in "$3"/child-*; do case $f in *.type) continue ;; esac; put_manifest "$2" "$f" "sha256:${f##*/child-}" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
put_manifest "$2" "$3/index" all
SH
floor_round() {
  start_registry DST
  measure index-floor curl bash "$W/put-one.sh" "$DST_HOST" "$W/largest-layer" "$LARGEST"
  stop_registry DST
  start_registry DST
  measure index-curl curl bash "$W/curl-index.sh" "$SRC_HOST" "$DST_HOST" "$W/curl-index"
  got=$(curl -fsS -I -H 'Accept: application/vnd.oci.image.index.v1+json' "http://$DST_HOST/v2/bench/multi/manifests/all" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
  [ "$got" = "$INDEX_DIGEST" ] || echo "  index-curl: the destination holds ${got:-nothing}, not $INDEX_DIGEST"
  stop_registry DST
}

for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r of $ROUNDS ($(uptime | sed 's/.*load/load/'))"
  if [ $((r % 2)) = 1 ]; then one_round mirror "$r"; one_round skopeo "$r"; else one_round skopeo "$r"; one_round mirror "$r"; fi
  floor_round
done

# A proxy in front of a registry: start_proxy NAME UPSTREAM_HOST [ARGS...] sets ${NAME}_HOST, ${NAME}_PID.
start_proxy() {
  local name=$1 up=$2 pid; shift 2
  node "$ROOT/bench/bench-proxy.mjs" "http://$up" "$@" > "$W/$name.addr" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do [ -s "$W/$name.addr" ] && break; sleep 0.05; done
  printf -v "${name}_HOST" '%s' "$(head -n 1 "$W/$name.addr")"
  printf -v "${name}_PID" '%s' "$pid"
}
stop_proxy() { local pid=${1}_PID; kill "${!pid}" 2>/dev/null || true; wait "${!pid}" 2>/dev/null || true; }
proxy_stats() { local h=${1}_HOST; curl -fsS "http://${!h}/__bench/stats"; }

echo "== within one registry"
start_proxy P "$SRC_HOST"
blob_store() { du -sb "$SRC_DIR/data/docker/registry/v2/blobs" | cut -f1; }
for tool in mirror skopeo; do
  curl -fsS -X POST "http://$P_HOST/__bench/reset" > /dev/null
  before=$(blob_store)
  if [ "$tool" = mirror ]; then measure same-registry mirror "${M_COPY[@]}" "docker://$P_HOST/bench/multi:all" "docker://$P_HOST/same-$tool/multi:all"
  else measure same-registry skopeo "${S_COPY[@]}" "docker://$P_HOST/bench/multi:all" "docker://$P_HOST/same-$tool/multi:all"; fi
  note same-registry "$tool" "$(proxy_stats P | python3 "$W/same.py")"
  note same-registry "$tool blob store growth bytes" "$(( $(blob_store) - before ))"
done
stop_proxy P

echo "== a source GET cut at 60%"
read -r BIG_LAYER BIG_SIZE < <(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$SRC_HOST/v2/bench/multi/manifests/$(head -n 3 "$W/images.txt" | tail -n 1 | cut -d' ' -f3)" |
  python3 -c 'import json,sys; l=max(json.load(sys.stdin)["layers"], key=lambda l: l["size"]); print(l["digest"], l["size"])')
CUT_AT=$((BIG_SIZE * 6 / 10))
for tool in mirror skopeo; do
  start_proxy C "$SRC_HOST" --cut-get "$BIG_LAYER:$CUT_AT"
  start_registry DST
  if [ "$tool" = mirror ]; then measure cut mirror "${M_COPY[@]}" --retry-times 3 "docker://$C_HOST/bench/multi:all" "docker://$DST_HOST/bench/multi:all"
  else measure cut skopeo "${S_COPY[@]}" --retry-times 3 "docker://$C_HOST/bench/multi:all" "docker://$DST_HOST/bench/multi:all"; fi
  rc=$(tail -n 1 "$RESULTS" | cut -f9)
  note cut "$tool" "exit $rc, $(proxy_stats C | python3 "$W/cut.py" "$BIG_LAYER" "$BIG_SIZE" "$CUT_AT")"
  [ "$rc" = 0 ] || note cut "$tool error" "$(grep -v '^next:' "$W/out.log" | tail -n 1 | sed -E 's/_state=[^"]*/_state=.../' | cut -c1-300)"
  got=$(skopeo inspect --raw --tls-verify=false "docker://$DST_HOST/bench/multi:all" 2>/dev/null | sha256sum | cut -d' ' -f1 || true)
  note cut "$tool read back" "$([ "sha256:$got" = "$INDEX_DIGEST" ] && echo "index digest identical" || echo "index missing or different")"
  stop_registry DST
  stop_proxy C
done

if [ "$BIG_ROUNDS" -gt 0 ]; then
  echo "== one 2 GiB layer ($(uptime | sed 's/.*load/load/'))"
  node "$ROOT/bench/make-big-image.mjs" "http://$SRC_HOST" bench/big 2g 2048 > "$W/big.json"
  note big image "$(cat "$W/big.json")"
  for r in $(seq 1 "$BIG_ROUNDS"); do
    echo "== 2 GiB, round $r of $BIG_ROUNDS"
    for tool in $([ $((r % 2)) = 1 ] && echo mirror skopeo || echo skopeo mirror); do
      start_registry DST
      if [ "$tool" = mirror ]; then
        measure big mirror "${M_COPY[@]}" --json "docker://$SRC_HOST/bench/big:2g" "docker://$DST_HOST/bench/big:2g"
        note big "mirror bytes uploaded" "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["blobs"]["bytesUploaded"])' "$W/out.log")"
        measure big-unchanged mirror "${M_COPY[@]}" --referrers=false "docker://$SRC_HOST/bench/big:2g" "docker://$DST_HOST/bench/big:2g"
        measure version mirror "${MIRROR[@]}" --version
      else
        # Without --preserve-digests skopeo gzips an uncompressed layer on the way to a registry (the digests change).
        measure big skopeo "${S_COPY[@]}" --preserve-digests "docker://$SRC_HOST/bench/big:2g" "docker://$DST_HOST/bench/big:2g"
      fi
      got=$(skopeo inspect --raw --tls-verify=false "docker://$DST_HOST/bench/big:2g" | sha256sum | cut -d' ' -f1)
      note big "$tool read back" "$([ "sha256:$got" = "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$W/big.json")" ] && echo identical || echo DIFFERENT)"
      stop_registry DST
    done
  done
fi

echo
echo "== results: medians over the rounds (wall s; client CPU s = user+sys of the command's own process tree; RSS MB)"
python3 - "$RESULTS" "$INDEX_BYTES" <<'PY'
import collections, re, statistics, sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1]) if l.strip()]
index_bytes = int(sys.argv[2])
T = collections.defaultdict(list); N = collections.defaultdict(list); loads = []
for r in rows:
    if r[0] == 'T':
        case, tool, secs, rss, blocks, user, sys_, rc, load = r[1:10]
        T[(case, tool)].append(dict(s=float(secs), rss=int(rss or 0) / 1024, disk=int(blocks or 0) * 512, cpu=(float(user) + float(sys_)) if user else None, rc=rc))
        loads.append(float(load))
    else:
        N[(r[1], r[2])].append(r[3])
med = lambda xs: statistics.median(xs) if xs else float('nan')
def line(case, tool):
    v = T.get((case, tool))
    if not v: return None
    s = [x['s'] for x in v]; cpu = [x['cpu'] for x in v if x['cpu'] is not None]
    fails = sum(1 for x in v if x['rc'] != '0')
    return f"{case:26} {tool:7} {med(s):8.2f} s (min {min(s):.2f}, max {max(s):.2f}, n {len(v)})" + (f"  cpu {med(cpu):.2f} s" if cpu else '') + \
        (f"  peak RSS {max(x['rss'] for x in v):.0f} MB  disk written {max(x['disk'] for x in v) / 1e6:.2f} MB" if cpu else '') + (f"  FAILED {fails}" if fails else '')
def ratio(case):
    a, b = T.get((case, 'mirror')), T.get((case, 'skopeo'))
    # skopeo's --version can take less than the 10 ms GNU time resolves: no ratio then.
    if a and b and med([x['s'] for x in b]) > 0: return med([x['s'] for x in a]) / med([x['s'] for x in b])
cases = ['index', 'index-unchanged', 'index-unchanged-referrers', 'set', 'set-unchanged', 'set-unchanged-referrers', 'same-registry', 'cut', 'big', 'big-unchanged', 'version']
for case in cases:
    for tool in ('mirror', 'skopeo'):
        l = line(case, tool)
        if l: print(l)
    r = ratio(case)
    if r: print(f"{'':26} mirror / skopeo = {r:.2f}")
def startup(tool):
    return med([x['s'] for x in T.get(('version', tool), [])])
# The index copy's floor on this machine: the largest layer alone, PUT by curl from a local file into a fresh registry.
if T.get(('index-floor', 'curl')) and T.get(('index', 'skopeo')):
    f, sk = med([x['s'] for x in T[('index-floor', 'curl')]]), med([x['s'] for x in T[('index', 'skopeo')]])
    print(f"{'index-floor':26} curl    {f:8.2f} s: the largest layer alone into a fresh registry (POST, PUT from a local file); "
          f"0.7 x skopeo's index = {0.7 * sk:.2f} s; the floor alone is {f / sk:.2f} of skopeo's time"
          + (f", mirror's start-up ({startup('mirror'):.2f} s) added {(f + startup('mirror')) / sk:.2f}" if T.get(('version', 'mirror')) else ''))
# The whole index by curl alone (nothing verified, no start-up, every blob at once): what any client can reach here.
if T.get(('index-curl', 'curl')) and T.get(('index', 'skopeo')):
    c, sk = med([x['s'] for x in T[('index-curl', 'curl')]]), med([x['s'] for x in T[('index', 'skopeo')]])
    mi = med([x['s'] for x in T.get(('index', 'mirror'), [])])
    print(f"{'index-curl':26} curl    {c:8.2f} s: the whole index by curl alone (every blob GET piped into a PUT at once, "
          f"nothing verified, no start-up) = {c / sk:.2f} of skopeo's time; 0.7 x skopeo's index = {0.7 * sk:.2f} s"
          + (f"; mirror / curl = {mi / c:.2f}" if mi == mi else ''))
# The index copy's CPU on this machine: the client's and both registries' CPU seconds over the cores is a least time no
# overlap of transfers can beat.
reg = [tuple(map(float, v.split())) for v in N.get(('index', 'mirror registries CPU s (source destination)'), [])]
if reg and T.get(('index', 'mirror')) and T.get(('index', 'skopeo')):
    cores = __import__('os').cpu_count() or 1
    client = med([x['cpu'] for x in T[('index', 'mirror')] if x['cpu'] is not None])
    src_cpu, dst_cpu = med([a for a, _ in reg]), med([b for _, b in reg])
    sk = med([x['s'] for x in T[('index', 'skopeo')]])
    print(f"{'index-cpu':26} mirror's run: client {client:.2f} + source {src_cpu:.2f} + destination {dst_cpu:.2f} CPU-s "
          f"over {cores} cores = {(client + src_cpu + dst_cpu) / cores:.2f} s at the least; 0.7 x skopeo's index = {0.7 * sk:.2f} s")
# Start-up taken out: each tool's median `--version` wall time subtracted from its median (one start-up per command).
for case, commands in (('index', 1), ('index-unchanged', 1), ('set', None), ('set-unchanged', None), ('big', 1)):
    a, b = T.get((case, 'mirror')), T.get((case, 'skopeo'))
    n = commands or len([k for k in T if re.fullmatch(re.escape(case) + r'-\d+', k[0]) and k[1] == 'mirror'])
    if a and b and T.get(('version', 'mirror')) and T.get(('version', 'skopeo')):
        ma, sb = med([x['s'] for x in a]) - n * startup('mirror'), med([x['s'] for x in b]) - n * startup('skopeo')
        print(f"{case:26} start-up taken out ({n} x --version: mirror {startup('mirror'):.2f} s, skopeo {startup('skopeo'):.2f} s): "
              f"mirror {ma:.2f} s, skopeo {sb:.2f} s, mirror / skopeo = {ma / sb:.2f}")
# Per image of the set: the median over rounds of each image's own copy, both tools.
per = collections.defaultdict(dict)
for (case, tool), v in T.items():
    m = re.fullmatch(r'(set|set-unchanged)-(\d+)', case)
    if m: per[(m.group(1), int(m.group(2)))][tool] = med([x['s'] for x in v])
for kind in ('set', 'set-unchanged'):
    ratios = [d['mirror'] / d['skopeo'] for (k, n), d in sorted(per.items()) if k == kind and 'mirror' in d and 'skopeo' in d]
    if ratios:
        print(f"per image, {kind}: mirror / skopeo median {med(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}); by image: " +
              ', '.join(f"{n}:{d.get('mirror', 0):.2f}/{d.get('skopeo', 0):.2f}" for (k, n), d in sorted(per.items()) if k == kind))
# The client's CPU per GB moved.
big_bytes = [int(x) for x in N.get(('big', 'mirror bytes uploaded'), [])]
def cpu(case, tool='mirror'):
    return med([x['cpu'] for x in T.get((case, tool), []) if x['cpu'] is not None])
if big_bytes:
    gb = med(big_bytes) / 1e9
    c, u, v = cpu('big'), cpu('big-unchanged'), cpu('version')
    print(f"CPU per GB, 2 GiB layer ({gb:.2f} GB): mirror {c:.2f} CPU-s; minus --version ({v:.2f}): {(c - v) / gb:.2f} CPU-s/GB; "
          f"minus an unchanged re-copy ({u:.2f}): {(c - u) / gb:.2f} CPU-s/GB; skopeo {cpu('big', 'skopeo') / gb:.2f} CPU-s/GB (start-up included)")
if T.get(('index', 'mirror')):
    gb = index_bytes / 1e9
    c, u, v = cpu('index'), cpu('index-unchanged'), cpu('version')
    print(f"CPU per GB, index ({gb:.3f} GB): mirror {c:.2f} CPU-s; minus an unchanged re-copy ({u:.2f}): {(c - u) / gb:.2f} CPU-s/GB" +
          (f"; minus --version ({v:.2f}): {(c - v) / gb:.2f} CPU-s/GB" if v == v else '') + f"; skopeo {cpu('index', 'skopeo') / gb:.2f} CPU-s/GB (start-up included)")
print()
for (case, key), v in sorted(N.items()):
    vals = sorted(set(v))
    print(f"{case:26} {key}: {' | '.join(vals)}")
print(f"\n1-minute load average at the timed runs: median {med(loads):.1f} (min {min(loads):.1f}, max {max(loads):.1f}) on {__import__('os').cpu_count()} CPUs")
PY
