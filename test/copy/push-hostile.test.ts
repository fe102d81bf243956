/**
 * Hostile bundles (issue 7, section 4): each shape, pushed through the built binary into a real docker-registry or an
 * `oci:DIR`, ends within a bounded time and memory, with a clear one-line message or success. Bundles are made by
 * testdata/make-fixtures.ts. Peak RSS is GNU time's `%M` of the node process. bench/hostile-bench.sh measures the same
 * shapes at full size and prints the figures.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors/index.js';
import { sha256Digest } from '../../src/oci/digest.js';
import {
  deepJsonBundle,
  fanoutBundle,
  type HostileBundle,
  longNameBundle,
  manyImagesBundle,
  sizeBundle,
  tinyImage,
  unreferencedBundle,
  wideBundle,
  writeOrderedTar,
} from '../../testdata/make-fixtures.js';
import { assertOneLineError, KILL_MS, timedCli, type TimedResult } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRawDigest } from '../helpers/skopeo.js';

/**
 * LIMIT_S bounds each case: issue 7's acceptance (10 s) is measured by the bench; here the bound catches a read that
 * turns quadratic (minutes), with room for a loaded 2-core CI machine, where the 6,000-image interleaved case took
 * 10.8-14 s and once 25 s.
 */
const LIMIT_S = 40;
/** RSS_LIMIT_MB is the acceptance bound of issue 7 on peak RSS. */
const RSS_LIMIT_MB = 300;

/** repoOf gives the destination repository path of a `gcr.io/hostile/x:1.0` reference pushed under `ns`. */
function destOf(registry: TestRegistry, ns: string, ref: string): string {
  return `docker://${registry.host}/${ns}/${ref.slice(ref.indexOf('/') + 1)}`;
}

/** longestLine gives the longest line of some output. */
function longestLine(text: string): number {
  return Math.max(0, ...text.split('\n').map((l) => l.length));
}

describe('mirror push: hostile bundles are bounded in time and memory (issue 7 §4)', function () {
  this.timeout(180_000);
  let registry: TestRegistry;
  let work: string;

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'mirror-hostile-'));
  });
  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  let n = 0;
  /** write writes a hostile bundle as a .tar.zst in the work folder. */
  const write = async (b: HostileBundle): Promise<string> => {
    const file = join(work, `bundle-${n++}.tar.zst`);
    await writeOrderedTar(b.files, file, 'zstd');
    return file;
  };
  const push = (file: string, ns: string, ...extra: string[]): Promise<TimedResult> =>
    timedCli(['push', '--source', file, '--private-registry', `http://${registry.host}/${ns}`, ...extra]);

  const within = (r: TimedResult, what: string, rssMb = RSS_LIMIT_MB): void => {
    // The figures, for the record (bench/hostile-bench.sh measures the same shapes alone).
    console.log(`        ${what}: exit ${r.code}, ${r.seconds.toFixed(2)} s, peak RSS ${r.rssMb.toFixed(0)} MB`);
    assert.ok(r.code !== null, `${what}: killed after ${KILL_MS / 1000} s\n${r.stderr.slice(-2000)}`);
    assert.ok(r.seconds < LIMIT_S, `${what}: ${r.seconds} s, more than ${LIMIT_S} s`);
    assert.ok(r.rssMb < rssMb, `${what}: peak RSS ${r.rssMb.toFixed(0)} MB, more than ${rssMb} MB`);
  };

  describe('1. walks over manifests keep a visited set and a depth limit', () => {
    it('an unnamed index fanning out to 16^8 paths (40 KB) pushes its named images and the index in seconds', async () => {
      const b = fanoutBundle();
      const r = await push(await write(b), 'fanout');
      within(r, 'fanout');
      assert.equal(r.code, ExitCode.OK, r.stdout + r.stderr);
      for (const ref of b.refs) await skopeoInspectRawDigest(destOf(registry, 'fanout', ref));
    });

    it('a wide DAG (an index of 22,000 entries naming one index of 22,000 entries) does not overflow the stack', async () => {
      const b = wideBundle();
      const out = join(work, 'wide-layout');
      const r = await timedCli(['push', '--source', await write(b), '--private-registry', `oci:${out}`]);
      within(r, 'wide');
      assert.doesNotMatch(r.stderr, /Maximum call stack|RangeError/);
      // The unnamed top index is not an image; the named image under it is.
      assert.equal(r.code, ExitCode.OK, r.stdout + r.stderr);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
      assert.ok(index.manifests.some((m) => m.annotations?.['io.containerd.image.name'] === b.refs[0]));
    });
  });

  describe('2. blobs met before the metadata do not make the read quadratic', () => {
    it('6,000 images with each layer and config before its manifest read in bounded time', async () => {
      const r = await timedCli(['push', '--source', await write(manyImagesBundle({ count: 6000, order: 'interleaved' })), '--private-registry', `oci:${join(work, 'many')}`, '--quiet']);
      within(r, 'interleaved');
      assert.equal(r.code, ExitCode.OK, r.stderr);
      const index = JSON.parse(await readFile(join(work, 'many', 'index.json'), 'utf8')) as { manifests: unknown[] };
      assert.equal(index.manifests.length, 6000);
    });
  });

  describe('3. 100,000 tiny unreferenced blobs', () => {
    for (const order of ['metadata-first', 'metadata-last'] as const) {
      it(`(${order}) hold no memory per blob and are not sent`, async () => {
        const b = unreferencedBundle({ count: 100_000, order });
        const ns = `unref-${order}`;
        const r = await push(await write(b), ns);
        within(r, order);
        assert.equal(r.code, ExitCode.OK, r.stdout + r.stderr);
        await skopeoInspectRawDigest(destOf(registry, ns, b.refs[0]!));
        // Nothing but the image went to the registry: its three blobs (no staging of 100,000 blobs nobody needs).
        const blobs = await readdir(join(registry.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256')).catch(() => []);
        assert.ok(blobs.length < 100, `${blobs.length} blob folders in the registry`);
      });
    }
  });

  describe('4. deeply nested JSON', () => {
    for (const where of ['index-annotation', 'child-platform', 'manifest-field', 'docker-config'] as const) {
      it(`(${where}) fails with a clear message; --json and --report still work`, async () => {
        const b = deepJsonBundle(where);
        const file = await write(b);
        const report = join(work, `report-${where}.json`);
        const r = await push(file, `deep-${where}`, '--json', '--report', report);
        within(r, where);
        assert.doesNotMatch(r.stderr, /Maximum call stack|RangeError/);
        const doc = JSON.parse(r.stdout) as { images?: Array<{ source: string; status: string; error?: string }>; error?: string };
        const written = JSON.parse(await readFile(report, 'utf8')) as unknown;
        assert.ok(written !== null);
        if (where === 'index-annotation') {
          // index.json itself is refused: the whole bundle is bad input.
          assert.equal(r.code, ExitCode.BAD_INPUT, r.stdout + r.stderr);
          assert.match(JSON.stringify(doc), /nest/);
          const human = await push(file, `deep-${where}-h`);
          assertOneLineError(human.stderr, 'index.json', /nest/);
          return;
        }
        assert.equal(r.code, ExitCode.PARTIAL, r.stdout + r.stderr);
        const bad = doc.images?.find((i) => i.source === b.badRef);
        assert.equal(bad?.status, 'failed', JSON.stringify(doc).slice(0, 2000));
        assert.match(bad?.error ?? '', /nest/);
        assert.ok((bad?.error ?? '').length < 400, bad?.error);
        for (const ref of b.refs) await skopeoInspectRawDigest(destOf(registry, `deep-${where}`, ref));
      });
    }
  });

  describe('5. a declared size that does not match the bytes is a bad blob', () => {
    const cases = [
      ['layer', 'metadata-first'],
      ['layer', 'metadata-last'],
      ['big-layer', 'metadata-first'],
      ['config', 'metadata-first'],
      ['config', 'metadata-last'],
      ['manifest', 'metadata-first'],
      ['manifest', 'metadata-last'],
    ] as const;
    for (const [what, order] of cases) {
      it(`(${what}, ${order}): that image fails untagged naming the digest and the sizes; the other goes through`, async () => {
        const b = sizeBundle(what, order);
        const ns = `size-${what}-${order}`;
        const r = await push(await write(b), ns, '--json');
        within(r, `${what} ${order}`);
        assert.equal(r.code, ExitCode.PARTIAL, r.stdout + r.stderr);
        const doc = JSON.parse(r.stdout) as { images: Array<{ source: string; status: string; error?: string }> };
        const bad = doc.images.find((i) => i.source === b.badRef);
        assert.equal(bad?.status, 'failed');
        assert.ok(bad?.error?.includes(b.badDigest), `names ${b.badDigest}: ${bad?.error}`);
        assert.match(bad?.error ?? '', /declares \d+ bytes/);
        await assert.rejects(skopeoInspectRawDigest(destOf(registry, ns, b.badRef)), 'no tag for the bad image');
        for (const ref of b.refs) await skopeoInspectRawDigest(destOf(registry, ns, ref));
      });
    }

    for (const order of ['metadata-first', 'metadata-last'] as const) {
      it(`(a 5.2 MiB manifest, ${order}) is named as larger than the 4 MiB limit`, async () => {
        const b = sizeBundle('huge-manifest', order);
        const ns = `huge-${order}`;
        const r = await push(await write(b), ns, '--json');
        within(r, `huge ${order}`);
        assert.equal(r.code, ExitCode.PARTIAL, r.stdout + r.stderr);
        const doc = JSON.parse(r.stdout) as { images: Array<{ source: string; status: string; error?: string }> };
        const bad = doc.images.find((i) => i.source === b.badRef);
        assert.equal(bad?.status, 'failed');
        assert.ok(bad?.error?.includes(`manifest ${b.badDigest} is 5.2 MiB, more than the 4 MiB limit`), bad?.error);
        for (const ref of b.refs) await skopeoInspectRawDigest(destOf(registry, ns, ref));
      });
    }
  });

  describe('6. messages quote a short prefix of input strings', () => {
    for (const what of ['tag', 'reference', 'entry', 'repo-tag'] as const) {
      it(`(a 100,000-character ${what})`, async () => {
        const b = longNameBundle(what);
        const r = await push(await write(b), `long-${what}`);
        within(r, what);
        assert.notEqual(r.code, ExitCode.OK);
        const all = r.stdout + r.stderr;
        assert.ok(all.includes(b.prefix), `quotes the prefix ${b.prefix}:\n${all.slice(0, 2000)}`);
        assert.ok(longestLine(all) < 500, `the longest line has ${longestLine(all)} characters:\n${all.slice(0, 1000)}`);
        assert.ok(all.length < 20_000, `${all.length} characters of output`);
        // One line says what is wrong: the error, or the failed image's line.
        const said = [...r.stdout.split('\n').filter((l) => l.startsWith('failed:')), ...r.stderr.split('\n').filter((l) => l.startsWith('mirror: error:'))];
        assert.equal(said.length, 1, all.slice(0, 2000));
        assert.ok(said[0]!.includes(b.prefix), said[0]);
        assert.doesNotMatch(all, /\n\s+at /, 'no stack trace');
      });
    }
  });

  describe('7. oci:DIR never overwrites what is not an OCI layout, nor writes out of DIR', () => {
    let bundle: string;
    const ref = 'gcr.io/hostile/layout:1.0';
    before(async () => {
      const img = tinyImage('layout');
      bundle = await write({
        files: [
          ['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')],
          ['index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [img.entry(ref)] }))],
          [`blobs/sha256/${img.descriptor.digest.slice(7)}`, img.manifest],
          [`blobs/sha256/${sha256Digest(img.config).slice(7)}`, img.config],
          [`blobs/sha256/${sha256Digest(img.layer).slice(7)}`, img.layer],
        ],
        refs: [ref],
      });
    });
    const pushTo = (dir: string) => timedCli(['push', '--source', bundle, '--private-registry', `oci:${dir}`]);

    it('pushes into a new directory, an empty one, and an existing layout', async () => {
      const fresh = join(work, 'l-new');
      assert.equal((await pushTo(fresh)).code, ExitCode.OK);
      const empty = join(work, 'l-empty');
      await mkdir(empty);
      assert.equal((await pushTo(empty)).code, ExitCode.OK);
      const again = await pushTo(fresh);
      assert.equal(again.code, ExitCode.OK, again.stderr);
    });

    it('an index.json that is not an OCI index is refused and left as it was', async () => {
      const dir = join(work, 'l-notindex');
      await mkdir(dir);
      await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      const mine = '{"name":"my package","version":"1.0.0"}\n';
      await writeFile(join(dir, 'index.json'), mine);
      const r = await pushTo(dir);
      assert.equal(r.code, ExitCode.BAD_INPUT, r.stderr);
      assertOneLineError(r.stderr, join(dir, 'index.json'), /not an OCI image index/);
      assert.equal(await readFile(join(dir, 'index.json'), 'utf8'), mine);
    });

    it('a directory holding other files and no oci-layout is refused, and nothing is written into it', async () => {
      const dir = join(work, 'l-other');
      await mkdir(dir);
      await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
      await writeFile(join(dir, 'notes.txt'), 'mine');
      const r = await pushTo(dir);
      assert.equal(r.code, ExitCode.BAD_INPUT, r.stderr);
      assertOneLineError(r.stderr, dir, /not an OCI image layout/);
      assert.deepEqual((await readdir(dir)).sort(), ['index.json', 'notes.txt']);
    });

    for (const linked of ['blobs', 'blobs/sha256', 'index.json', 'oci-layout'] as const) {
      it(`${linked} as a symbolic link out of DIR is refused; nothing is written outside`, async () => {
        const dir = join(work, `l-link-${linked.replace('/', '-')}`);
        const outside = join(work, `outside-${linked.replace('/', '-')}`);
        await mkdir(join(dir, 'blobs'), { recursive: true });
        await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
        if (linked === 'blobs' || linked === 'blobs/sha256') {
          await mkdir(outside, { recursive: true });
          if (linked === 'blobs') await rm(join(dir, 'blobs'), { recursive: true });
          await symlink(outside, join(dir, linked));
        } else {
          if (linked === 'oci-layout') await rm(join(dir, 'oci-layout'));
          const content = linked === 'index.json' ? '{"schemaVersion":2,"manifests":[]}' : '{"imageLayoutVersion":"1.0.0"}';
          await writeFile(outside, content);
          await symlink(outside, join(dir, linked));
        }
        const before = (await lstat(outside)).isDirectory() ? await readdir(outside, { recursive: true }) : await readFile(outside, 'utf8');
        const r = await pushTo(dir);
        assert.equal(r.code, ExitCode.BAD_INPUT, r.stdout + r.stderr);
        assertOneLineError(r.stderr, /symbolic link that leads out of/);
        const after = (await lstat(outside)).isDirectory() ? await readdir(outside, { recursive: true }) : await readFile(outside, 'utf8');
        assert.deepEqual(after, before, `${outside} is unchanged`);
        assert.ok(existsSync(join(dir, linked)));
      });
    }
  });
});
