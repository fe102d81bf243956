import assert from 'node:assert/strict';
import { DigestMismatchError } from '../../src/errors/index.js';
import { createHash } from 'node:crypto';
import { digestLike, sha256Digest, verifyBytes, verifyingStream } from '../../src/oci/digest.js';
import { parseManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/media-types.js';

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

describe('oci', () => {
  it('verifyingStream passes matching bytes through', async () => {
    const out: string[] = [];
    for await (const c of verifyingStream(chunks('ab', 'cd', 'e'), sha256Digest('abcde'), 5)) out.push(Buffer.from(c).toString());
    assert.equal(out.join(''), 'abcde');
  });

  it('verifyingStream withholds the last chunk of bytes that do not match', async () => {
    const got: string[] = [];
    await assert.rejects(async () => {
      for await (const c of verifyingStream(chunks('ab', 'cd', 'X'), sha256Digest('abcde'), 5)) got.push(Buffer.from(c).toString());
    }, DigestMismatchError);
    assert.equal(got.join(''), 'abcd', 'the consumer never saw the whole content');
    await assert.rejects(async () => {
      for await (const _ of verifyingStream(chunks('abcdef'), sha256Digest('abcde'), 5)) void _;
    }, /size 6 bytes, expected 5/);
  });

  it('verifies sha512 (and sha384) content with its own algorithm, and refuses an algorithm it cannot compute', async () => {
    const sha512 = `sha512:${createHash('sha512').update('abcde').digest('hex')}`;
    assert.equal(digestLike('abcde', sha512), sha512);
    assert.equal(digestLike('abcde', 'sha384').length, 'sha384:'.length + 96);
    verifyBytes(Buffer.from('abcde'), sha512, 5);
    assert.throws(() => verifyBytes(Buffer.from('abcdX'), sha512, 5), DigestMismatchError);
    const out: string[] = [];
    for await (const c of verifyingStream(chunks('ab', 'cde'), sha512, 5)) out.push(Buffer.from(c).toString());
    assert.equal(out.join(''), 'abcde');
    await assert.rejects(async () => {
      for await (const _ of verifyingStream(chunks('ab', 'cdX'), sha512, 5)) void _;
    }, /content hashes to sha512:/);
    await assert.rejects(async () => {
      for await (const _ of verifyingStream(chunks('abcde'), `blake3:${'a'.repeat(64)}`, 5)) void _;
    }, /digest algorithm "blake3" cannot be verified/);
  });

  it('parseManifest tells indexes from images and refuses schema 1', () => {
    const img = { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: sha256Digest('c'), size: 1 }, layers: [] };
    assert.equal(parseManifest(Buffer.from(JSON.stringify(img)), undefined).kind, 'image');
    const idx = { schemaVersion: 2, manifests: [{ mediaType: MediaType.OCI_MANIFEST, digest: sha256Digest('m'), size: 1 }] };
    assert.equal(parseManifest(Buffer.from(JSON.stringify(idx)), undefined).kind, 'index');
    assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":1,"fsLayers":[]}'), undefined), /schema 1/);
    assert.throws(() => parseManifest(Buffer.from('not json'), undefined, { digest: 'sha256:x' }), /not valid JSON/);
  });
});
