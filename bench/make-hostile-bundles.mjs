// Writes each hostile bundle shape of issue 7 section 4 into DIR (built by testdata/make-fixtures.ts; run
// `npm run build` first), one `.tar.zst` per shape, and prints `NAME<TAB>FILE` lines.
//
//   node bench/make-hostile-bundles.mjs DIR [SHAPE...]
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
const f = await import(join(root, 'dist', 'testdata', 'make-fixtures.js'));
const dir = resolve(process.argv[2] ?? '.bench/hostile');
const only = process.argv.slice(3);
await mkdir(dir, { recursive: true });

/** Each shape: name -> builder of a HostileBundle. */
const shapes = {
  'fanout-index': () => f.fanoutBundle(),
  'wide-dag': () => f.wideBundle(),
  'many-6000-interleaved': () => f.manyImagesBundle({ count: 6000, order: 'interleaved' }),
  'many-6000-metadata-first': () => f.manyImagesBundle({ count: 6000, order: 'metadata-first' }),
  'many-6000-metadata-last': () => f.manyImagesBundle({ count: 6000, order: 'metadata-last' }),
  'unreferenced-100000-metadata-first': () => f.unreferencedBundle({ count: 100_000, order: 'metadata-first' }),
  'unreferenced-100000-metadata-last': () => f.unreferencedBundle({ count: 100_000, order: 'metadata-last' }),
  'deep-json-index-annotation': () => f.deepJsonBundle('index-annotation'),
  'deep-json-child-platform': () => f.deepJsonBundle('child-platform'),
  'deep-json-manifest-field': () => f.deepJsonBundle('manifest-field'),
  'deep-json-docker-config': () => f.deepJsonBundle('docker-config'),
  'size-layer': () => f.sizeBundle('layer', 'metadata-first'),
  'size-big-layer': () => f.sizeBundle('big-layer', 'metadata-first'),
  'size-config': () => f.sizeBundle('config', 'metadata-last'),
  'size-manifest': () => f.sizeBundle('manifest', 'metadata-first'),
  'huge-manifest-first': () => f.sizeBundle('huge-manifest', 'metadata-first'),
  'huge-manifest-last': () => f.sizeBundle('huge-manifest', 'metadata-last'),
  'long-tag': () => f.longNameBundle('tag'),
  'long-reference': () => f.longNameBundle('reference'),
  'long-entry': () => f.longNameBundle('entry'),
  'long-repo-tag': () => f.longNameBundle('repo-tag'),
};

for (const [name, build] of Object.entries(shapes)) {
  if (only.length > 0 && !only.includes(name)) continue;
  const file = join(dir, `${name}.tar.zst`);
  await f.writeOrderedTar(build().files, file, 'zstd');
  console.log(`${name}\t${file}`);
}
