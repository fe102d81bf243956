/** Registry error bodies, error codes by status, and pagination links. */
import assert from 'node:assert/strict';
import { MirrorError, registerSecret } from '../../src/errors/index.js';
import { forgetSecrets } from '../../src/errors/sanitize.js';
import { errorCodeForStatus, nextLink, parseErrorBody, StreamConsumedError } from '../../src/registry/index.js';
import { DETAIL_LIMIT, registryErrorFromText } from '../../src/registry/errors.js';
import { isRetryableError } from '../../src/net/retry.js';

describe('registry errors', () => {
  it('parses the errors body, first line of each message only, with the detail', () => {
    assert.deepEqual(parseErrorBody('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:x"},{"message":"a\\nb"}]}'), [
      { code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: 'sha256:x' },
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

  it("keeps the registry's detail: text, distribution's storage errors (errno named), JSON otherwise; one line, bounded", () => {
    const detailOf = (detail: unknown): string | undefined => parseErrorBody(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'unknown error', detail }] }))[0]?.detail;
    assert.equal(detailOf('write /var/lib/registry/x/data: no space left on device'), 'write /var/lib/registry/x/data: no space left on device');
    // What docker-registry 2.8 answers to a POST on a full disk.
    assert.equal(
      detailOf({ DriverName: 'filesystem', Enclosed: { Op: 'write', Path: '/var/lib/registry/x/startedat', Err: 28 } }),
      'filesystem: write /var/lib/registry/x/startedat: no space left on device',
    );
    assert.equal(detailOf({ Op: 'open', Path: '/p', Err: 9999 }), 'open /p: errno 9999');
    assert.equal(detailOf({ Digest: 'sha256:ab', Reason: {} }), '{"Digest":"sha256:ab","Reason":{}}');
    assert.equal(detailOf([{ Type: 'repository', Name: 'a/b', Action: 'push' }]), '[{"Type":"repository","Name":"a/b","Action":"push"}]');
    assert.equal(detailOf('line one\nline\u001b[31m two'), 'line one line [31m two');
    assert.equal(detailOf({}), undefined);
    assert.equal(detailOf(''), undefined);
    // A registry that quotes what it was sent, the secret across the cut: it comes out whole before the text is cut.
    registerSecret('S3cretPassw0rd-xyz', Buffer.from('alice:S3cretPassw0rd-xyz').toString('base64'));
    try {
      for (const at of [185, 190, 195, 199]) {
        const echoed = detailOf(`${'x'.repeat(at)} pw=S3cretPassw0rd-xyz auth=Basic ${Buffer.from('alice:S3cretPassw0rd-xyz').toString('base64')}`)!;
        assert.ok(echoed.length <= DETAIL_LIMIT + 3, echoed);
        assert.doesNotMatch(echoed, /S3c|YWxpY2U6UzNj/, `cut at ${at}: ${echoed}`);
      }
    } finally {
      forgetSecrets();
    }
    assert.equal(detailOf('x'.repeat(5000))?.length, 203);
    const deep = `${'{"DriverName":"d","Enclosed":'.repeat(3000)}"bottom"${'}'.repeat(3000)}`;
    const parsed = parseErrorBody(`{"errors":[{"code":"UNKNOWN","message":"m","detail":${deep}}]}`);
    assert.ok((parsed[0]?.detail?.length ?? 0) <= 203, 'a deeply nested detail is bounded');
  });

  it('a full disk: the message carries the detail, says what to do, and is not retried though it is a 500', () => {
    const body = JSON.stringify({
      errors: [{ code: 'UNKNOWN', message: 'unknown error', detail: { DriverName: 'filesystem', Enclosed: { Op: 'write', Path: '/r/_uploads/u/startedat', Err: 28 } } }],
    });
    const e = registryErrorFromText(500, {}, body, 'POST', new URL('http://r:5000/v2/a/blobs/uploads/'), { phase: 'upload', what: 'to a' });
    assert.equal(e.message, 'upload to a failed: HTTP 500 Internal Server Error: UNKNOWN unknown error: filesystem: write /r/_uploads/u/startedat: no space left on device');
    assert.match(e.hint ?? '', /out of disk space/);
    assert.ok(!isRetryableError(e));
    const busy = registryErrorFromText(500, {}, '{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}', 'POST', new URL('http://r:5000/v2/'), { phase: 'upload' });
    assert.ok(isRetryableError(busy), 'another 500 is retried as before');
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
