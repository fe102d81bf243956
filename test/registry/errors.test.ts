/** Registry error bodies, error codes by status, and pagination links. */
import assert from 'node:assert/strict';
import { MirrorError } from '../../src/errors/index.js';
import { errorCodeForStatus, nextLink, parseErrorBody, StreamConsumedError } from '../../src/registry/index.js';
import { registryErrorFromText } from '../../src/registry/errors.js';

describe('registry errors', () => {
  it('parses the errors body, first line of each message only', () => {
    assert.deepEqual(parseErrorBody('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:x"},{"message":"a\\nb"}]}'), [
      { code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' },
      { code: 'UNKNOWN', message: 'a' },
    ]);
    assert.deepEqual(parseErrorBody('<html>502 Bad Gateway</html>'), []);
    assert.deepEqual(parseErrorBody(''), []);
    assert.deepEqual(parseErrorBody('{"errors":"nope"}'), []);
  });

  it('maps statuses to codes: 401/403 AUTH, 404 NOT_FOUND, others REGISTRY', () => {
    assert.equal(errorCodeForStatus(401), 'AUTH');
    assert.equal(errorCodeForStatus(403), 'AUTH');
    assert.equal(errorCodeForStatus(404), 'NOT_FOUND');
    assert.equal(errorCodeForStatus(404, false), 'REGISTRY');
    assert.equal(errorCodeForStatus(500), 'REGISTRY');
    assert.equal(errorCodeForStatus(400), 'REGISTRY');
  });

  it('builds a one-line error with phase, method, redacted URL, status, registry code and Retry-After', () => {
    const e = registryErrorFromText(
      429,
      { 'retry-after': '7' },
      '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
      'PATCH',
      new URL('http://u:pw@r:5000/v2/a/blobs/uploads/x?_state=SECRET'),
      { phase: 'upload', what: 'chunk 0-9 to a' },
    );
    assert.ok(e instanceof MirrorError);
    assert.equal(e.code, 'REGISTRY');
    assert.equal(e.message, 'upload chunk 0-9 to a failed: HTTP 429 Too Many Requests: TOOMANYREQUESTS slow down');
    assert.equal(e.context.url, 'http://r:5000/v2/a/blobs/uploads/x?_state=REDACTED');
    assert.equal(e.context.status, 429);
    assert.equal(e.context.registryCode, 'TOOMANYREQUESTS');
    assert.equal(e.retryAfter, '7');
    assert.ok(!e.describe().includes('SECRET') && !e.describe().includes('pw'));
  });

  it('StreamConsumedError is a NETWORK error marked streamConsumed', () => {
    const e = new StreamConsumedError('cut');
    assert.equal(e.code, 'NETWORK');
    assert.equal(e.streamConsumed, true);
    assert.equal(e.exitCode, 6);
  });

  it('finds the next page in a Link header', () => {
    assert.equal(nextLink('</v2/a/tags/list?last=b&n=1>; rel="next"'), '/v2/a/tags/list?last=b&n=1');
    assert.equal(nextLink('<https://x/prev>; rel="prev", <https://x/next?a=1,2>; rel=next'), 'https://x/next?a=1,2');
    assert.equal(nextLink('<https://x/prev>; rel="prev"'), undefined);
    assert.equal(nextLink(undefined), undefined);
  });
});
