/** Reports for the mirror config tests, written the way src/copy/report.ts writes them. */

/** Img is a compact image of a test report. */
export interface Img {
  source: string;
  registry: string;
  repository: string;
  tag?: string;
  dest: string;
  status?: string;
  winner?: string;
}

/** pushReport writes a version-2 push report the way src/copy/report.ts does. */
export function pushReport(host: string, namespace: string, images: Img[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 2,
    source: 'bundle demo.tar.xz (xz, OCI layout)',
    target: `${host}/${namespace}`,
    endpoint: { kind: 'registry', scheme: 'https', host, namespace },
    mappingOptions: { keepRegistryHost: false, onConflict: 'fail' },
    dryRun: false,
    summary: {},
    images: images.map((i) => ({
      source: i.source,
      destination: `${host}/${i.dest}:${i.tag ?? '1'}`,
      digest: `sha256:${'a'.repeat(64)}`,
      status: i.status ?? 'pushed',
      mapping: {
        source: { registry: i.registry, repository: i.repository, tag: i.tag ?? '1', digest: `sha256:${'a'.repeat(64)}` },
        destination: { registry: host, repository: i.dest, tag: i.tag ?? '1' },
      },
      ...(i.winner ? { conflict: { reference: 'x', claims: [], resolution: 'skipped', winner: i.winner } } : {}),
      children: [],
    })),
    ...extra,
  };
}

/** DEMO are the demo bundle's images pushed into `ns`. */
export const DEMO: Img[] = [
  { source: 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0', registry: 'gcr.io', repository: 'kubernetes-e2e-test-images/nautilus', tag: '1.0', dest: 'ns/kubernetes-e2e-test-images/nautilus' },
  { source: 'docker.io/library/busybox:1.36', registry: 'docker.io', repository: 'library/busybox', tag: '1.36', dest: 'ns/library/busybox' },
  { source: 'quay.io/mirror-demo/tools:2.0', registry: 'quay.io', repository: 'mirror-demo/tools', tag: '2.0', dest: 'ns/mirror-demo/tools' },
];
