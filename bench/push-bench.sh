#!/usr/bin/env bash
# Times `mirror push` side by side with the baseline users have today (unpack the bundle, then `skopeo copy` per
# image: ../shared/bench/peer-skopeo-push.sh) and with `xz -dc -T0 > /dev/null` of the same file, in interleaved
# rounds, each push into a fresh docker-registry on 127.0.0.1. Reports medians, ratios, peak RSS (GNU time %M) and
# bytes written to local disk by the pushing process tree (GNU time %O, 512-byte blocks).
#
#   bench/push-bench.sh [BUNDLE_DIR] [ROUNDS] [BUNDLES...]
#
# BUNDLE_DIR defaults to .bench/bundles (built by ../shared/bench/make-bench-bundles.sh when missing).
# BUNDLES default to oci-metadata-last.tar.xz oci-metadata-first.tar.xz docker-save.tar.xz; `big` adds a bundle
# whose one layer is 2 GiB (uncompressed .tar, made here) to check memory and disk use.
# Needs: node (project built), docker-registry, skopeo, xz, python3, GNU time (/usr/bin/time).
# MIRROR_NODE=PATH runs mirror on another Node.js than the one on PATH (Node 24, the LTS users run, say).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
B=${1:-$ROOT/.bench/bundles}
ROUNDS=${2:-3}
shift $(( $# > 2 ? 2 : $# )) || true
BUNDLES=("$@")
[ ${#BUNDLES[@]} -gt 0 ] || BUNDLES=(oci-metadata-last.tar.xz oci-metadata-first.tar.xz docker-save.tar.xz)
[ -f "$B/oci-metadata-last.tar.xz" ] || bash "$SHARED/bench/make-bench-bundles.sh" "$B"
[ -f "$ROOT/dist/src/commands/push.js" ] || (cd "$ROOT" && npm run build >/dev/null)
W=$(mktemp -d); trap 'stop_registry; rm -rf "$W"' EXIT
RESULTS=$W/results.tsv; : > "$RESULTS"

REG_PID=
REG_DIR=
start_registry() {
  local port dir
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$(mktemp -d -p "$W"); REG_DIR=$dir
  cat > "$dir/config.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
EOF
  docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  REG=127.0.0.1:$port
}
# Each registry's storage is deleted with it, so that no run pays for writing back the last one's data.
stop_registry() {
  [ -z "$REG_PID" ] || { kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; REG_PID=; }
  [ -z "$REG_DIR" ] || { rm -rf "$REG_DIR"; REG_DIR=; }
}

# measure NAME BUNDLE CMD...: one timed run, appended to the results.
measure() {
  local name=$1 bundle=$2; shift 2
  local tf=$W/time.$$
  sync # start every run with no dirty pages of earlier runs waiting to be written
  if /usr/bin/time -o "$tf" -f '%e %M %O' "$@" >"$W/out.log" 2>&1; then rc=0; else rc=$?; fi
  read -r secs rss blocks < <(tail -n 1 "$tf")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$bundle" "$name" "$secs" "$rss" "$blocks" "$rc" >> "$RESULTS"
  [ "$rc" = 0 ] || { echo "  $name failed (exit $rc):"; tail -n 5 "$W/out.log"; }
}

make_big() {
  [ -f "$B/big-layer.tar" ] && return
  python3 - "$B" <<'PY'
import hashlib, io, json, os, sys, tarfile
out = sys.argv[1]; size = 2 * 1024**3
# One 2 GiB layer of pseudo-random bytes (content does not matter to the registry), streamed into the tar.
BLOCK = b''.join(hashlib.sha256(i.to_bytes(4, 'big')).digest() for i in range(1 << 15))  # 1 MiB, fixed
class Gen(io.RawIOBase):
    def __init__(self): self.left = size; self.pos = 0
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left, len(BLOCK) - self.pos); b[:n] = BLOCK[self.pos:self.pos + n]
        self.pos = (self.pos + n) % len(BLOCK); self.left -= n; return n
h = hashlib.sha256()
left = size
while left: n = min(left, len(BLOCK)); h.update(BLOCK[:n]); left -= n
layer = 'sha256:' + h.hexdigest()
cfg = json.dumps({'architecture': 'amd64', 'os': 'linux', 'rootfs': {'type': 'layers', 'diff_ids': [layer]}}).encode()
cd = 'sha256:' + hashlib.sha256(cfg).hexdigest()
man = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
  'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': cd, 'size': len(cfg)},
  'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'digest': layer, 'size': size}]}).encode()
md = 'sha256:' + hashlib.sha256(man).hexdigest()
idx = json.dumps({'schemaVersion': 2, 'manifests': [{'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': md, 'size': len(man),
  'annotations': {'io.containerd.image.name': 'registry.example.com/big/layer:2g', 'org.opencontainers.image.ref.name': '2g'}}]}).encode()
with tarfile.open(os.path.join(out, 'big-layer.tar'), 'w', format=tarfile.PAX_FORMAT) as t:
    def add(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    add('oci-layout', b'{"imageLayoutVersion":"1.0.0"}'); add('index.json', idx)
    add('blobs/sha256/' + md[7:], man); add('blobs/sha256/' + cd[7:], cfg)
    ti = tarfile.TarInfo('blobs/sha256/' + layer[7:]); ti.size = size; t.addfile(ti, Gen())
PY
}

for bundle in "${BUNDLES[@]}"; do
  if [ "$bundle" = big ]; then make_big; bundle=big-layer.tar; fi
  f=$B/$bundle
  echo "== $bundle ($(du -h "$f" | cut -f1)), $ROUNDS rounds"
  for r in $(seq 1 "$ROUNDS"); do
    start_registry
    measure mirror "$bundle" "${MIRROR_NODE:-node}" "$ROOT/bin/run.js" push --source "$f" --private-registry "http://$REG/bench"
    stop_registry
    if [ "$bundle" != big-layer.tar ]; then
      start_registry
      measure skopeo-pipeline "$bundle" bash "$SHARED/bench/peer-skopeo-push.sh" "$f" "$REG/bench"
      stop_registry
      case "$f" in *.xz) measure xz-decode "$bundle" sh -c "xz -dc -T0 '$f' > /dev/null" ;; esac
    fi
  done
done

python3 - "$RESULTS" "$B" <<'PY'
import collections, os, statistics, sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1]) if l.strip()]
by = collections.defaultdict(list)
for bundle, name, secs, rss, blocks, rc in rows:
    by[(bundle, name)].append((float(secs), int(rss), int(blocks), int(rc)))
def usize(bundle):
    import subprocess
    p = os.path.join(sys.argv[2], bundle)
    if bundle.endswith('.xz'):
        out = subprocess.run(['xz', '--robot', '-l', p], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith('totals'): return int(line.split('\t')[4])
    return os.path.getsize(p)
print(f"{'bundle':28} {'tool':16} {'median s':>9} {'min':>6} {'max':>6} {'peak RSS MB':>11} {'disk MB':>8} {'disk % of tar':>13} {'fails':>5}")
for (bundle, name), v in sorted(by.items()):
    s = [x[0] for x in v]; med = statistics.median(s)
    rss = max(x[1] for x in v) / 1024; disk = max(x[2] for x in v) * 512 / 1e6
    pct = 100 * disk * 1e6 / usize(bundle)
    print(f"{bundle:28} {name:16} {med:9.2f} {min(s):6.2f} {max(s):6.2f} {rss:11.0f} {disk:8.1f} {pct:12.2f}% {sum(1 for x in v if x[3]):5}")
print()
for bundle in sorted({b for b, _ in by}):
    m = by.get((bundle, 'mirror'))
    if not m: continue
    mm = statistics.median(x[0] for x in m)
    for peer in ('skopeo-pipeline', 'xz-decode'):
        p = by.get((bundle, peer))
        if p: print(f"{bundle}: mirror / {peer} = {mm / statistics.median(x[0] for x in p):.2f}")
PY
