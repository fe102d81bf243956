/**
 * `mirror inspect TRANSPORT:REF` and `mirror list-tags docker://HOST/REPO`, against real registries (docker-registry,
 * one with bearer-token auth) with skopeo as the reference: digests and `--raw` bytes identical to `skopeo inspect
 * --raw` on a multi-platform index, one of its platforms (`--platform`) and a single manifest; sizes and creation
 * times from the configs; referrers through a cosign tag and `--referrers=false`; `--tags`; archives; a bundle is
 * still listed as before; list-tags gives every tag once across pages of a small size, equal to `skopeo list-tags`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeAll } from '../../src/net/http.js';
import { sha256Digest } from '../../src/oci/digest.js';
import { buildOciLayout, type LayoutSpec, writeDirectory } from '../../testdata/make-fixtures.js';
import { homeMaker, isolatedEnv } from '../helpers/auth-env.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { run, stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRaw, skopeoListTags, SKOPEO_TIMEOUT_MS } from '../helpers/skopeo.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';

const USER = 'inspector';
const PASSWORD = 'Insp:ect0r';

const SPEC: LayoutSpec = {
  seed: 'mirror-inspect-image',
  images: [
    {
      ref: 'docker.io/library/multi:1.0',
      platforms: [
        { os: 'linux', arch: 'amd64' },
        { os: 'linux', arch: 'arm64', variant: 'v8' },
      ],
      layers: [{ files: 2, sizeBytes: 30_000 }, { files: 1, sizeBytes: 2000 }],
    },
    { ref: 'quay.io/team/small:2.0', layers: [{ files: 2, sizeBytes: 20_000 }] },
  ],
};

interface InspectDoc {
  name: string;
  digest: string;
  mediaType: string;
  platforms?: string[];
  manifests: Array<{ digest: string; size: number; layers: number; created?: string; platform?: { architecture: string } }>;
  referrers?: Array<{ digest: string; via: string; tag?: string }>;
  tags?: string[];
}

describe('mirror inspect TRANSPORT:REF and mirror list-tags (integration: docker-registry with token auth, skopeo)', function () {
  this.timeout(300_000);
  let work: string;
  let plain: TestRegistry;
  let tokens: TokenServer;
  let reg: TestRegistry;
  const home = homeMaker(() => work);
  const creds = `${USER}:${PASSWORD}`;
  const skopeoOpts = { creds };

  function mirror(args: string[]): Promise<CliResult> {
    return runCli(args, { env: isolatedEnv(home()) });
  }
  async function inspectJson(args: string[]): Promise<InspectDoc> {
    const r = await mirror(['inspect', '--json', '--tls-verify=false', '--creds', creds, ...args]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    return JSON.parse(r.stdout) as InspectDoc;
  }

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-inspect-image-'));
    const layout = await buildOciLayout(SPEC);
    const dir = join(work, 'layout');
    await writeDirectory(layout.files, dir);
    plain = await startRegistry();
    const seeded = await mirror(['push', '--source', dir, '--private-registry', `http://${plain.host}`, '--need-credential=false']);
    assert.equal(seeded.code, 0, seeded.stderr);
    tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
    reg = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } });
    for (const [from, to] of [['library/multi:1.0', 'app/multi:1.0'], ['team/small:2.0', 'app/small:2.0']]) {
      const r = await mirror(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', creds, `docker://${plain.host}/${from}`, `docker://${reg.host}/${to}`]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
    }
  });
  after(async () => {
    await closeAll();
    await reg?.stop();
    await tokens?.stop();
    await plain?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('--raw prints the manifest bytes skopeo inspect --raw prints, byte for byte (index, one platform, single manifest)', async () => {
    for (const name of ['app/multi:1.0', 'app/small:2.0']) {
      const r = await runCli(['inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/${name}`], { env: isolatedEnv(home()) });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(Buffer.from(r.stdout, 'utf8'), await skopeoInspectRaw(`docker://${reg.host}/${name}`, skopeoOpts));
    }
    const index = JSON.parse((await skopeoInspectRaw(`docker://${reg.host}/app/multi:1.0`, skopeoOpts)).toString('utf8')) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
    const arm = index.manifests.find((d) => d.platform.architecture === 'arm64')!;
    const r = await mirror(['inspect', '--raw', '--platform', 'linux/arm64', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/app/multi:1.0`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Buffer.from(r.stdout, 'utf8'), await skopeoInspectRaw(`docker://${reg.host}/app/multi@${arm.digest}`, skopeoOpts));
  });

  it('--json: digest, media type, platforms, sizes and created, as skopeo reads them', async () => {
    const multi = await inspectJson([`docker://${reg.host}/app/multi:1.0`]);
    const raw = await skopeoInspectRaw(`docker://${reg.host}/app/multi:1.0`, skopeoOpts);
    assert.equal(multi.digest, sha256Digest(raw));
    assert.equal(multi.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(multi.platforms, ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(multi.manifests.length, 2);
    for (const m of multi.manifests) {
      const child = JSON.parse((await skopeoInspectRaw(`docker://${reg.host}/app/multi@${m.digest}`, skopeoOpts)).toString('utf8')) as { config: { size: number }; layers: Array<{ size: number }> };
      assert.equal(m.size, child.config.size + child.layers.reduce((n, l) => n + l.size, 0));
      assert.equal(m.layers, child.layers.length);
      const config = JSON.parse(await run('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/app/multi@${m.digest}`], { timeoutMs: SKOPEO_TIMEOUT_MS })) as { created?: string };
      assert.equal(m.created, config.created);
    }
    const small = await inspectJson([`docker://${reg.host}/app/small:2.0`]);
    assert.equal(small.digest, sha256Digest(await skopeoInspectRaw(`docker://${reg.host}/app/small:2.0`, skopeoOpts)));
    assert.equal(small.platforms, undefined);
    const sk = JSON.parse(await run('skopeo', ['inspect', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/app/small:2.0`], { timeoutMs: SKOPEO_TIMEOUT_MS })) as { Digest: string; Created: string };
    assert.equal(small.digest, sk.Digest);
    assert.equal(Date.parse(small.manifests[0]!.created!), Date.parse(sk.Created));
    // The text form names the same.
    const text = await mirror(['inspect', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/app/multi:1.0`]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`digest: +${multi.digest}`));
    assert.match(text.stdout, /platforms: +linux\/amd64, linux\/arm64\/v8/);
  });

  it('referrers (a cosign signature tag), --referrers=false, and --tags', async () => {
    const small = await inspectJson([`docker://${reg.host}/app/small:2.0`]);
    assert.deepEqual(small.referrers, []);
    const sigTag = `${small.digest.replace(':', '-')}.sig`;
    const r = await mirror(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', creds, `docker://${plain.host}/team/small:2.0`, `docker://${reg.host}/app/small:${sigTag}`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const again = await inspectJson(['--tags', `docker://${reg.host}/app/small:2.0`]);
    assert.deepEqual(again.referrers?.map((x) => [x.via, x.tag]), [['tag', sigTag]]);
    assert.deepEqual(again.tags, await skopeoListTags(`docker://${reg.host}/app/small`, skopeoOpts));
    const none = await inspectJson(['--referrers=false', `docker://${reg.host}/app/small:2.0`]);
    assert.equal(none.referrers, undefined);
    assert.equal(none.tags, undefined);
  });

  it('archives: oci-archive with the digest skopeo reads; docker-archive by its config', async () => {
    const oa = join(work, 'small-oci.tar');
    await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${reg.host}/app/small:2.0`, `oci-archive:${oa}:app`], { timeoutMs: SKOPEO_TIMEOUT_MS });
    const r = await mirror(['inspect', '--raw', `oci-archive:${oa}:app`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Buffer.from(r.stdout, 'utf8'), Buffer.from(await run('skopeo', ['inspect', '--raw', `oci-archive:${oa}:app`], { timeoutMs: SKOPEO_TIMEOUT_MS }), 'utf8'));
    const da = join(work, 'small-docker.tar');
    await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${reg.host}/app/small:2.0`, `docker-archive:${da}:app/small:2.0`], { timeoutMs: SKOPEO_TIMEOUT_MS });
    const d = await mirror(['inspect', '--json', `docker-archive:${da}`]);
    assert.equal(d.code, 0, d.stderr);
    const doc = JSON.parse(d.stdout) as InspectDoc;
    const sk = JSON.parse(await run('skopeo', ['inspect', '--raw', `docker-archive:${da}`], { timeoutMs: SKOPEO_TIMEOUT_MS })) as { config: { digest: string } };
    const mine = JSON.parse((await mirror(['inspect', '--raw', `docker-archive:${da}`])).stdout) as { config: { digest: string } };
    assert.equal(mine.config.digest, sk.config.digest);
    assert.equal(doc.manifests.length, 1);
  });

  it('a bundle is still listed (no transport prefix); --raw on a bundle is a usage error', async () => {
    const dir = join(work, 'layout');
    const r = await mirror(['inspect', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /quay\.io\/team\/small:2\.0/);
    const bad = await mirror(['inspect', '--raw', dir]);
    assert.equal(bad.code, 2, bad.stderr);
  });

  it('list-tags: every tag once across pages of 4 (Link followed), equal to skopeo list-tags; --json is skopeo\'s shape', async () => {
    // 23 tags on the plain registry: the manifest PUT under each name.
    const raw = await skopeoInspectRaw(`docker://${plain.host}/team/small:2.0`);
    const mediaType = (JSON.parse(raw.toString('utf8')) as { mediaType: string }).mediaType;
    const names = Array.from({ length: 22 }, (_, i) => `v1.${i}`);
    for (const t of names) {
      const res = await fetch(`${plain.url}/v2/team/small/manifests/${t}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: raw });
      assert.equal(res.status, 201, t);
    }
    const want = await skopeoListTags(`docker://${plain.host}/team/small`);
    assert.equal(want.length, 23);
    const r = await mirror(['list-tags', '--tls-verify=false', '--page-size', '4', `docker://${plain.host}/team/small`]);
    assert.equal(r.code, 0, r.stderr);
    const got = r.stdout.trim().split('\n');
    assert.deepEqual(got, want);
    assert.equal(new Set(got).size, got.length);
    const j = await mirror(['list-tags', '--json', '--tls-verify=false', `docker://${plain.host}/team/small`]);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), { Repository: `${plain.host}/team/small`, Tags: want });
    // With token auth, and a tag in the location refused.
    const t = await mirror(['list-tags', '--json', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/app/multi`]);
    assert.equal(t.code, 0, t.stderr);
    assert.deepEqual((JSON.parse(t.stdout) as { Tags: string[] }).Tags, ['1.0']);
    const tagged = await mirror(['list-tags', `docker://${plain.host}/team/small:2.0`]);
    assert.equal(tagged.code, 2, tagged.stderr);
  });
});
