/**
 * `oci-archive:FILE[:REF]` and `docker-archive:FILE[:REF|@N]` as `mirror copy` sources, against a real registry
 * (docker-registry) with skopeo as the independent writer and reader: archives skopeo writes (plain, and gzip, xz,
 * zstd compressed by the test) copy into a registry with the digests expected (oci-archive: identical; docker-archive:
 * the config identical and every layer's diff_id identical); archives mirror writes round-trip; REF selection (by
 * ref.name, by RepoTags, by @N, none with several images: a usage error listing them); a truncated or corrupt archive
 * is exit 3 naming the file; the temporary file of a compressed archive is gone after success, failure and Ctrl-C.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { closeAll } from '../../src/net/http.js';
import { buildDockerSave, buildOciLayout, compress, type LayoutSpec, writeDirectory, writeTarBundle, DOCKER_SAVE_SPEC } from '../../testdata/make-fixtures.js';
import { homeMaker, isolatedEnv } from '../helpers/auth-env.js';
import { assertOneLineError, BIN, runCli, type CliResult } from '../helpers/cli.js';
import { run, stopAll } from '../helpers/proc.js';
import { startStallProxy } from '../helpers/stall-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw, skopeoInspectRawDigest, SKOPEO_TIMEOUT_MS } from '../helpers/skopeo.js';

const SPEC: LayoutSpec = {
  seed: 'mirror-archive-sources',
  images: [
    {
      ref: 'docker.io/library/multi:1.0',
      platforms: [
        { os: 'linux', arch: 'amd64' },
        { os: 'linux', arch: 'arm64', variant: 'v8' },
      ],
      layers: [{ files: 2, sizeBytes: 40_000 }, { files: 2, sizeBytes: 3000 }],
    },
    { ref: 'quay.io/team/small:2.0', layers: [{ files: 2, sizeBytes: 600_000 }, { files: 1, sizeBytes: 700 }] },
  ],
};

const COMPRESSIONS = ['none', 'gzip', 'xz', 'zstd'] as const;

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('archive sources: mirror copy oci-archive:/docker-archive: (integration: docker-registry, skopeo)', function () {
  this.timeout(300_000);
  let work: string;
  let temp: string;
  let src: TestRegistry;
  let dst: TestRegistry;
  const home = homeMaker(() => work);
  /** The registry's digests of the seeded images. */
  let smallDigest: string;
  let multiDigest: string;
  let smallConfig: string;
  let smallDiffIds: string[];

  /** copy runs mirror copy with TMPDIR pointing at a directory of the test's own (to see the temporary files). */
  function copy(args: string[]): Promise<CliResult> {
    return runCli(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...args], { env: { ...isolatedEnv(home()), TMPDIR: temp } });
  }

  function skopeo(args: string[]): Promise<string> {
    return run('skopeo', args, { timeoutMs: SKOPEO_TIMEOUT_MS });
  }

  /** compressed writes FILE compressed as asked next to it and gives its path. */
  async function compressed(file: string, c: (typeof COMPRESSIONS)[number]): Promise<string> {
    if (c === 'none') return file;
    const out = `${file}.${c}`;
    writeFileSync(out, await compress(readFileSync(file), c));
    return out;
  }

  /** manifestOf reads a manifest from a registry (with skopeo) and parses it. */
  async function manifestOf(ref: string): Promise<{ config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> }> {
    return JSON.parse((await skopeoInspectRaw(ref)).toString('utf8')) as { config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
  }

  /** blob fetches a blob from a registry. */
  async function blob(reg: TestRegistry, repo: string, digest: string): Promise<Buffer> {
    const res = await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`);
    assert.equal(res.status, 200, `${repo}@${digest}`);
    return Buffer.from(await res.arrayBuffer());
  }

  /** diffIdsAt gives the sha256 of each layer of an image in a registry, decompressed. */
  async function diffIdsAt(reg: TestRegistry, repo: string, tag: string): Promise<string[]> {
    const m = await manifestOf(`docker://${reg.host}/${repo}:${tag}`);
    const out: string[] = [];
    for (const l of m.layers) {
      const b = await blob(reg, repo, l.digest);
      out.push(sha256(l.mediaType.includes('gzip') ? zlib.gunzipSync(b) : b));
    }
    return out;
  }

  // What mirror left in its TMPDIR (Node >= 22 keeps its own compile cache there: not ours, left out).
  const tempLeft = (): string[] => readdirSync(temp).filter((n) => n !== 'node-compile-cache');

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-archive-sources-'));
    temp = join(work, 'tmp');
    mkdirSync(temp);
    const layout = await buildOciLayout(SPEC);
    const dir = join(work, 'layout');
    await writeDirectory(layout.files, dir);
    src = await startRegistry();
    dst = await startRegistry();
    const seeded = await runCli(['push', '--source', dir, '--private-registry', `http://${src.host}`, '--need-credential=false'], { env: isolatedEnv(home()) });
    assert.equal(seeded.code, 0, seeded.stderr);
    smallDigest = await skopeoInspectRawDigest(`docker://${src.host}/team/small:2.0`);
    multiDigest = await skopeoInspectRawDigest(`docker://${src.host}/library/multi:1.0`);
    smallConfig = (await manifestOf(`docker://${src.host}/team/small:2.0`)).config.digest;
    smallDiffIds = await diffIdsAt(src, 'team/small', '2.0');
    // Archives skopeo writes.
    await skopeo(['copy', '--src-tls-verify=false', `docker://${src.host}/team/small:2.0`, `oci-archive:${join(work, 'small-oci.tar')}:app`]);
    await skopeo(['copy', '--src-tls-verify=false', '--all', `docker://${src.host}/library/multi:1.0`, `oci-archive:${join(work, 'multi-oci.tar')}:multi`]);
    await skopeo(['copy', '--src-tls-verify=false', `docker://${src.host}/team/small:2.0`, `docker-archive:${join(work, 'small-docker.tar')}:team/small:2.0`]);
  });
  after(async () => {
    await closeAll();
    await src?.stop();
    await dst?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  for (const c of COMPRESSIONS) {
    it(`oci-archive skopeo wrote (${c}): copied into a registry with its digest, skopeo reads it back; no temporary file left`, async () => {
      const file = await compressed(join(work, 'small-oci.tar'), c);
      const r = await copy([`oci-archive:${file}:app`, `docker://${dst.host}/oa-${c}/small:2.0`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/oa-${c}/small:2.0`), smallDigest);
      if (c !== 'none') assert.match(r.stderr, new RegExp(`${c}-compressed: decompressing it once into a private temporary file`));
      assert.deepEqual(tempLeft(), []);
    });

    it(`docker-archive skopeo wrote (${c}): into a registry, layers gzip-compressed, config and diff_ids identical, the note says the digest is mirror's`, async () => {
      const file = await compressed(join(work, 'small-docker.tar'), c);
      const r = await copy([`docker-archive:${file}:team/small:2.0`, `docker://${dst.host}/da-${c}/small:2.0`]);
      assert.equal(r.code, 0, r.stderr);
      const m = await manifestOf(`docker://${dst.host}/da-${c}/small:2.0`);
      assert.equal(m.config.digest, smallConfig);
      assert.ok(m.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'), JSON.stringify(m.layers));
      assert.deepEqual(await diffIdsAt(dst, `da-${c}/small`, '2.0'), smallDiffIds);
      assert.match(r.stdout, /note: docker-archive layers compressed with gzip for the registry/);
      // skopeo copies it on (verifying every blob it reads).
      await skopeo(['copy', '--src-tls-verify=false', `docker://${dst.host}/da-${c}/small:2.0`, `oci:${join(work, `check-da-${c}`)}:x`]);
      assert.deepEqual(tempLeft(), []);
    });
  }

  it('oci-archive of a multi-platform index: the index digest kept; --platform picks one manifest', async () => {
    const file = join(work, 'multi-oci.tar');
    let r = await copy([`oci-archive:${file}:multi`, `docker://${dst.host}/oa/multi:1.0`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/oa/multi:1.0`), multiDigest);
    r = await copy(['--platform', 'linux/arm64', `oci-archive:${file}`, `docker://${dst.host}/oa/multi-arm:1.0`]);
    assert.equal(r.code, 0, r.stderr);
    const idx = JSON.parse((await skopeoInspectRaw(`docker://${src.host}/library/multi:1.0`)).toString('utf8')) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
    const want = idx.manifests.find((d) => d.platform.architecture === 'arm64')!.digest;
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/oa/multi-arm:1.0`), want);
  });

  it('an oci-archive and a docker-archive mirror wrote round-trip into a registry', async () => {
    let r = await copy([`docker://${src.host}/library/multi:1.0`, `oci-archive:${join(work, 'rt-oci.tar')}:rt`]);
    assert.equal(r.code, 0, r.stderr);
    r = await copy([`oci-archive:${join(work, 'rt-oci.tar')}:rt`, `docker://${dst.host}/rt/multi:1.0`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await skopeoInspectRawDigest(`docker://${dst.host}/rt/multi:1.0`), multiDigest);
    r = await copy([`docker://${src.host}/team/small:2.0`, `docker-archive:${join(work, 'rt-docker.tar')}:rt/small:2.0`]);
    assert.equal(r.code, 0, r.stderr);
    r = await copy([`docker-archive:${join(work, 'rt-docker.tar')}`, `docker://${dst.host}/rt/small:2.0`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await manifestOf(`docker://${dst.host}/rt/small:2.0`)).config.digest, smallConfig);
    assert.deepEqual(await diffIdsAt(dst, 'rt/small', '2.0'), smallDiffIds);
    // docker-archive to docker-archive: layers stay uncompressed; skopeo reads the result.
    r = await copy([`docker-archive:${join(work, 'rt-docker.tar')}:rt/small:2.0`, `docker-archive:${join(work, 'rt-docker2.tar')}:again:1`]);
    assert.equal(r.code, 0, r.stderr);
    const inspected = JSON.parse(await skopeo(['inspect', '--config', '--raw', `docker-archive:${join(work, 'rt-docker2.tar')}`])) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(inspected.rootfs.diff_ids, smallDiffIds);
  });

  describe('REF selection in a docker archive of several images', () => {
    let file: string;
    let built: Awaited<ReturnType<typeof buildDockerSave>>;
    before(async () => {
      built = await buildDockerSave(DOCKER_SAVE_SPEC);
      file = join(work, 'two.tar');
      await writeTarBundle(built.files, file, { order: 'metadata-last', compression: 'none' });
    });

    it('no REF: a usage error listing the images', async () => {
      const r = await copy([`docker-archive:${file}`, `docker://${dst.host}/sel/none:1`]);
      assert.equal(r.code, 2, r.stderr);
      assertOneLineError(r.stderr, 'holds 2 images', 'quay.io/mirror-demo/tools:2.0', 'gcr.io/kubernetes-e2e-test-images/nautilus:1.0');
    });

    it('by RepoTags entry (normalized) and by @N', async () => {
      const tools = built.images.find((i) => i.refs[0] === 'quay.io/mirror-demo/tools:2.0')!;
      let r = await copy([`docker-archive:${file}:quay.io/mirror-demo/tools:2.0`, `docker://${dst.host}/sel/tools:2.0`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await manifestOf(`docker://${dst.host}/sel/tools:2.0`)).config.digest, tools.configDigest);
      assert.deepEqual(await diffIdsAt(dst, 'sel/tools', '2.0'), tools.diffIds);
      const first = built.images[0]!;
      r = await copy([`docker-archive:${file}:@0`, `docker://${dst.host}/sel/first:1`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await manifestOf(`docker://${dst.host}/sel/first:1`)).config.digest, first.configDigest);
      r = await copy([`docker-archive:${file}:nope:1`, `docker://${dst.host}/sel/nope:1`]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stdout, /failed: .* has no image named "nope:1" \(it has gcr\.io\/kubernetes-e2e-test-images\/nautilus:1\.0/);
    });
  });

  describe('bad archives: exit 3 naming the file, no temporary file left', () => {
    it('a truncated oci-archive', async () => {
      const file = join(work, 'truncated.tar');
      writeFileSync(file, readFileSync(join(work, 'small-oci.tar')));
      truncateSync(file, Math.floor(statSync(file).size / 2));
      const r = await copy([`oci-archive:${file}:app`, `docker://${dst.host}/bad/t:1`]);
      assert.equal(r.code, 3, r.stderr);
      assertOneLineError(r.stderr, file);
    });

    it('a truncated xz docker-archive and a corrupt gzip oci-archive', async () => {
      const xz = await compressed(join(work, 'small-docker.tar'), 'xz');
      const cut = join(work, 'cut.tar.xz');
      writeFileSync(cut, readFileSync(xz).subarray(0, Math.floor(statSync(xz).size * 0.6)));
      let r = await copy([`docker-archive:${cut}`, `docker://${dst.host}/bad/x:1`]);
      assert.equal(r.code, 3, r.stderr);
      assertOneLineError(r.stderr, cut);
      assert.deepEqual(tempLeft(), []);
      const gz = Buffer.from(await compress(readFileSync(join(work, 'small-oci.tar')), 'gzip'));
      for (let i = Math.floor(gz.length / 2); i < Math.floor(gz.length / 2) + 64; i++) gz[i] = gz[i]! ^ 0x5a;
      const bad = join(work, 'corrupt.tar.gz');
      writeFileSync(bad, gz);
      r = await copy([`oci-archive:${bad}:app`, `docker://${dst.host}/bad/g:1`]);
      assert.equal(r.code, 3, r.stderr);
      assertOneLineError(r.stderr, bad);
      assert.deepEqual(tempLeft(), []);
    });

    it('not a tar at all', async () => {
      const file = join(work, 'junk.tar');
      writeFileSync(file, Buffer.alloc(4096, 7));
      const r = await copy([`docker-archive:${file}`, `docker://${dst.host}/bad/j:1`]);
      assert.equal(r.code, 3, r.stderr);
      assertOneLineError(r.stderr, file);
    });
  });

  it('Ctrl-C while a decompressed archive is being sent: exit 130, the temporary file is gone', async () => {
    const stall = await startStallProxy(dst.url, { stall: 'uploads' });
    try {
      const file = await compressed(join(work, 'small-oci.tar'), 'zstd');
      const child = spawn(process.execPath, [BIN, 'copy', '--dest-tls-verify=false', `oci-archive:${file}:app`, `docker://${stall.host}/cut/small:2.0`], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...isolatedEnv(home()), TMPDIR: temp, NO_COLOR: '1' },
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.resume();
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      try {
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && !(stall.stalled > 0 && tempLeft().length > 0)) await new Promise((r) => setTimeout(r, 50));
        assert.ok(stall.stalled > 0, `an upload stalled (stderr: ${stderr})`);
        assert.equal(tempLeft().length, 1, 'the temporary directory exists while the copy runs');
        const inside = readdirSync(join(temp, tempLeft()[0]!));
        assert.equal(statSync(join(temp, tempLeft()[0]!, inside[0]!)).mode & 0o777, 0o600);
        child.kill('SIGINT');
        assert.equal(await exited, 130, stderr);
        assert.deepEqual(tempLeft(), []);
      } finally {
        clearTimeout(killer);
      }
    } finally {
      await stall.stop();
    }
  });
});

