#!/usr/bin/env bash
# The peer baseline of ../shared/bench/peer-skopeo-push.sh with `--retry-times 5`, for the fault benchmark:
# unpack the bundle, then `skopeo copy` every image; an image that still fails is reported and the rest go on.
#   bench/peer-skopeo-retry.sh BUNDLE.tar.xz HOST:PORT/NAMESPACE
set -uo pipefail
B=$1; DEST=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
xz -dc -T0 "$B" | tar -x -C "$T"
python3 - "$T" > "$T/.refs" <<'PY'
import json, sys
t = sys.argv[1]
idx = json.load(open(f'{t}/index.json'))
for i, m in enumerate(idx['manifests']):
    a = m['annotations']; a['org.opencontainers.image.ref.name'] = f'img{i}'
    print(f"oci:{t}:img{i}", a['io.containerd.image.name'].split('/', 1)[1])
json.dump(idx, open(f'{t}/index.json', 'w'))
PY
fail=0
while read -r src dst; do
  skopeo copy -q --all --retry-times 5 --dest-tls-verify=false "$src" "docker://$DEST/$dst" >/dev/null 2>&1 || fail=$((fail+1))
done < "$T/.refs"
echo "failed images: $fail"
[ "$fail" = 0 ]
