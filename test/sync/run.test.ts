/** Which failures of a sync are a source registry's own (they fail its images) and which stop the run. */
import assert from 'node:assert/strict';
import { MirrorError } from '../../src/errors/index.js';
import { sourceSideFailure } from '../../src/sync/run.js';

describe('sync/run sourceSideFailure', () => {
  const net = (url: string | undefined, cause?: unknown): MirrorError => new MirrorError('NETWORK', 'x', { url, cause });

  it('a failed request to a source host is the source\'s; to the destination, or to another host, it is not', () => {
    const fromSource = sourceSideFailure(['quay.io', '10.0.0.9:5000'], 'mirror.local:5000');
    assert.equal(fromSource(net('https://quay.io/v2/team/app/manifests/1.0')), true);
    assert.equal(fromSource(net('http://10.0.0.9:5000/v2/')), true);
    assert.equal(fromSource(net('https://mirror.local:5000/v2/ns/app/blobs/uploads/')), false);
    assert.equal(fromSource(net('https://auth.quay.io/token')), false, 'a token server that names no registry is not attributed');
    const token = (registry: string): MirrorError => new MirrorError('NETWORK', 'x', { url: 'https://auth.example/token', registry });
    assert.equal(fromSource(token('quay.io')), true, "a token server's failure for a source is the source's");
    assert.equal(fromSource(token('mirror.local:5000')), false, "a token server's failure for the destination is the destination's");
    assert.equal(fromSource(net(undefined)), false, 'an error that names no request is not attributed');
    assert.equal(fromSource(new Error('plain')), false);
  });

  it('looks through causes for the request; docker.io is reached as registry-1.docker.io; a source that is also the destination is the destination', () => {
    assert.equal(sourceSideFailure(['docker.io'], 'm:5000')(new MirrorError('NETWORK', 'outer', { cause: net('https://registry-1.docker.io/v2/') })), true);
    assert.equal(sourceSideFailure(['m:5000'], 'm:5000')(net('https://m:5000/v2/')), false);
  });
});
