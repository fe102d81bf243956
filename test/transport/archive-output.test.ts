/**
 * Where archives are written: `FILE.tmp-*` renamed into place at commit, removed synchronously the moment the run is
 * aborted (before a second Ctrl-C can kill the process), and removed when the process exits without committing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256Digest } from '../../src/oci/digest.js';
import { openOciArchiveDestination } from '../../src/transport/archive/oci-archive.js';
import { ArchiveOutput, checkArchivePath } from '../../src/transport/archive/output.js';

const OUTPUT_JS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'transport', 'archive', 'output.js');

describe('archive output (temporary file, commit, cleanup)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mirror-archive-out-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes FILE.tmp-* and renames it to FILE at commit', async () => {
    const file = join(dir, 'a.tar');
    const out = await ArchiveOutput.create(file, 'oci-archive');
    assert.deepEqual(readdirSync(dir), [out.tempName]);
    await out.tar.addFile('x', Buffer.from('y'));
    await out.commit();
    assert.deepEqual(readdirSync(dir), ['a.tar']);
  });

  it('an abort removes the temporary file at once, while a blob is still being written', async () => {
    const file = join(dir, 'b.tar');
    const dest = openOciArchiveDestination(file);
    const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}');
    await dest.putManifest({ repository: '', tag: '1', name: 'b' }, '1', manifest, 'application/vnd.oci.image.manifest.v1+json', { root: true });
    const controller = new AbortController();
    let wrote!: () => void;
    const started = new Promise<void>((r) => (wrote = r));
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(2 * 1024 * 1024, 1);
      wrote();
      await new Promise((r) => setTimeout(r, 60_000).unref());
    }
    const put = dest.putBlob('', { digest: sha256Digest('never'), size: 3 * 1024 * 1024 }, { kind: 'stream', open: slow, reopenable: false }, { signal: controller.signal });
    put.catch(() => {});
    await started;
    const tmp = readdirSync(dir).find((n) => n.includes('.tmp-'));
    assert.ok(tmp !== undefined);
    controller.abort(new Error('interrupted'));
    assert.equal(existsSync(join(dir, tmp)), false, 'gone synchronously, in the abort itself');
    await dest.close();
    assert.deepEqual(readdirSync(dir), []);
  });

  it('a process that exits before commit leaves no temporary file', () => {
    const file = join(dir, 'c.tar');
    const script = `
      import { ArchiveOutput } from ${JSON.stringify(OUTPUT_JS)};
      const out = await ArchiveOutput.create(${JSON.stringify(file)}, 'docker-archive');
      await out.tar.addFile('x', Buffer.alloc(100000));
      process.stdout.write(out.tempName + '\\n');
      process.exit(130);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 130, r.stderr);
    assert.match(r.stdout, /c\.tar\.tmp-/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('checks where an archive can go before anything is read', async () => {
    await assert.rejects(checkArchivePath(join(dir, 'missing', 'x.tar'), { transport: 'oci-archive' }), /directory .* does not exist/);
    await assert.rejects(checkArchivePath(dir, { transport: 'oci-archive' }), /is a directory/);
    writeFileSync(join(dir, 'full.tar'), 'x');
    await checkArchivePath(join(dir, 'full.tar'), { transport: 'oci-archive' });
    await assert.rejects(checkArchivePath(join(dir, 'full.tar'), { transport: 'docker-archive', refuseExisting: true }), /already exists/);
  });
});
