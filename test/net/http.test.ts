/** The HTTP layer: bodies, timeouts, error mapping and redaction, TLS options, proxies. */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { MirrorError } from '../../src/errors/index.js';
import { closeAll, defaultCaCertificates, FinalNetworkError, request, tlsOptions, type TimeoutInfo } from '../../src/net/http.js';
import { isRetryableError } from '../../src/net/retry.js';
import type { HostSettings } from '../../src/net/types.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { freePort } from '../helpers/proc.js';

const plain: HostSettings = { scheme: 'http', tls: {} };

/** listen starts a server on 127.0.0.1 and gives its base URL. */
async function listen(server: Server, scheme = 'http'): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** close stops a server and its connections. */
async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('net/http', function () {
  this.timeout(20_000);
  const servers: Server[] = [];
  let certs: TestCerts;

  before(async () => {
    certs = await makeCerts();
  });
  after(async () => {
    await closeAll();
    await Promise.all(servers.map(close));
    if (certs !== undefined) rmSync(certs.dir, { recursive: true, force: true });
  });

  const serve = async (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> => {
    const s = createServer(handler);
    servers.push(s);
    return listen(s);
  };

  it('keeps the connection after a HEAD (a push sends one per blob and manifest)', async () => {
    let connections = 0;
    const s = createServer((req, res) => {
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-length': '157', 'content-type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : Buffer.alloc(157, 0x20));
    });
    s.on('connection', () => connections++);
    servers.push(s);
    const url = await listen(s);
    const paths = ['/missing', '/there', '/missing', '/there', '/missing', '/there', '/missing', '/there'];
    for (const path of paths) {
      const res = await request({ method: 'HEAD', url: `${url}${path}`, settings: plain });
      assert.equal(res.status, path === '/missing' ? 404 : 200);
      await res.discard();
    }
    const get = await request({ method: 'GET', url: `${url}/there`, settings: plain });
    assert.equal((await get.bytes(1000)).byteLength, 157, 'the next response is read whole on the same connection');
    // undici may open a second connection when a request follows the last one in the same tick; closing after each
    // HEAD would have opened one per request.
    assert.ok(connections <= 2, `${paths.length + 1} requests over ${connections} connections`);
  });

  it('streams a request body with a known length and reads the response', async () => {
    const url = await serve((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        res.writeHead(201, { 'x-length': String(body.byteLength), 'x-te': req.headers['transfer-encoding'] ?? 'none' });
        res.end(body.subarray(0, 5));
      });
    });
    async function* source(): AsyncGenerator<Uint8Array, void, undefined> {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(1000, i);
    }
    const res = await request({ method: 'PUT', url: `${url}/x`, settings: plain, headers: { 'content-length': '10000' }, body: source() });
    assert.equal(res.status, 201);
    assert.equal(res.headers['x-length'], '10000');
    assert.equal(res.headers['x-te'], 'none', 'Content-Length, not chunked');
    assert.equal(await res.text(), '\u0000'.repeat(5));
  });

  it('a body stream that fails surfaces its own error', async () => {
    const url = await serve((req, res) => {
      req.resume();
      req.on('end', () => res.end());
    });
    const boom = new MirrorError('DIGEST_MISMATCH', 'boom');
    async function* source(): AsyncGenerator<Uint8Array, void, undefined> {
      yield Buffer.alloc(10);
      throw boom;
    }
    await assert.rejects(request({ method: 'PUT', url: `${url}/x`, settings: plain, headers: { 'content-length': '100' }, body: source() }), (e: unknown) => e === boom);
  });

  it('a stalled response body becomes a retryable NETWORK error, not a hang', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(10));
      // and nothing more
    });
    const res = await request({ method: 'GET', url: `${url}/slow`, settings: plain, timeouts: { bodyTimeoutMs: 300 } });
    const started = Date.now();
    await assert.rejects(
      (async () => {
        for await (const _ of res.body) void _;
      })(),
      (e: unknown) => {
        assert.ok(e instanceof MirrorError);
        assert.equal(e.code, 'NETWORK');
        assert.match(e.message, /stalled/);
        assert.ok(isRetryableError(e));
        return true;
      },
    );
    assert.ok(Date.now() - started < 5_000);
  });

  it('a server that never answers times out (headers timeout), retryably', async () => {
    const url = await serve(() => {
      // never answers
    });
    await assert.rejects(request({ method: 'GET', url: `${url}/never`, settings: plain, timeouts: { headersTimeoutMs: 300 } }), (e: unknown) => {
      assert.ok(e instanceof MirrorError && e.code === 'NETWORK');
      assert.match(e.message, /timed out/);
      assert.ok(isRetryableError(e));
      return true;
    });
  });

  it('reports each timeout, and gives up on a host that keeps timing out with no answer in between (two rounds)', async () => {
    const url = await serve((req, res) => {
      if (req.url?.startsWith('/ok') === true) res.end('ok');
      // anything else: never answers
    });
    const seen: TimeoutInfo[] = [];
    const timeouts = { headersTimeoutMs: 300, onTimeout: (t: TimeoutInfo) => seen.push(t) };
    const get = (path: string): ReturnType<typeof request> => request({ method: 'GET', url: `${url}${path}?_state=SECRET`, settings: plain, timeouts });
    // A timeout, an answer, a timeout: the answer in between keeps the host alive.
    await assert.rejects(get('/never'), (e: unknown) => isRetryableError(e) && !(e instanceof FinalNetworkError));
    assert.equal(await (await get('/ok')).text(), 'ok');
    await assert.rejects(get('/never'), (e: unknown) => isRetryableError(e) && !(e instanceof FinalNetworkError));
    // Two timeouts in a row over more than the timeout: the host is given up on, by name.
    await assert.rejects(get('/never'), (e: unknown) => {
      assert.ok(e instanceof FinalNetworkError, String(e));
      assert.equal(e.code, 'NETWORK');
      assert.ok(!isRetryableError(e));
      assert.match(e.message, new RegExp(`^no answer from ${new URL(url).host} for [\\d.]+ s \\(2 requests in a row timed out\\)$`));
      assert.ok(!e.describe().includes('SECRET'));
      return true;
    });
    assert.equal(seen.length, 3);
    assert.deepEqual(seen[0], { kind: 'headers', ms: 300, method: 'GET', url: `${url}/never?_state=REDACTED`, host: new URL(url).host });
  });

  it('a body that stalls: text() throws a retryable timeout, discard() reports it and goes on', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('0123456789');
      // ...and nothing more
    });
    const seen: TimeoutInfo[] = [];
    const timeouts = { bodyTimeoutMs: 300, onTimeout: (t: TimeoutInfo) => seen.push(t) };
    const first = await request({ method: 'GET', url: `${url}/a`, settings: plain, timeouts });
    await assert.rejects(first.text(), (e: unknown) => e instanceof MirrorError && e.code === 'NETWORK' && /stalled/.test(e.message) && isRetryableError(e));
    const second = await request({ method: 'GET', url: `${url}/b`, settings: plain, timeouts });
    const started = Date.now();
    await second.discard();
    assert.ok(Date.now() - started >= 250, 'discard waited for the body timeout');
    assert.deepEqual(
      seen.map((t) => [t.kind, new URL(t.url).pathname]),
      [
        ['body', '/a'],
        ['body', '/b'],
      ],
    );
  });

  it('a body that trickles (a byte every 50 ms, never silent long enough for the idle timeout) is cut at the rate floor, retryably', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      const timer = setInterval(() => res.write('x'), 50);
      res.on('close', () => clearInterval(timer));
    });
    const seen: TimeoutInfo[] = [];
    const res = await request({ method: 'GET', url: `${url}/trickle`, settings: plain, timeouts: { bodyTimeoutMs: 400, onTimeout: (t) => seen.push(t) } });
    const started = Date.now();
    await assert.rejects(res.text(), (e: unknown) => {
      assert.ok(e instanceof MirrorError && e.code === 'NETWORK', String(e));
      assert.match(e.message, /^GET http:\/\/127\.0\.0\.1:\d+\/trickle: the answer came at \d+ B\/s over 0\.\d s, under the 1 KiB\/s a transfer must keep$/);
      assert.ok(isRetryableError(e));
      return true;
    });
    assert.ok(Date.now() - started < 3_000);
    assert.deepEqual(
      seen.map((t) => t.kind),
      ['slow'],
    );
  });

  it('a reader that is slow itself is not charged to the server: a fast body read slowly is whole', async () => {
    const body = Buffer.alloc(1024 * 1024, 7);
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(body.byteLength) });
      res.end(body);
    });
    const res = await request({ method: 'GET', url: `${url}/fast`, settings: plain, timeouts: { bodyTimeoutMs: 500, minBytesPerSecond: 1024 * 1024 * 1024 } });
    let total = 0;
    let chunks = 0;
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      chunks++;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(total, body.byteLength);
    assert.ok(chunks * 100 > 500, `the reader held the body longer than the window (${chunks} chunks)`);
  });

  it('a server that takes an upload at a trickle is cut by the headers timeout, retryably', async () => {
    // The server reads 16 bytes every 20 ms once the kernel buffers are full: about 800 B/s.
    const url = await serve((req) => {
      req.pause();
      const timer = setInterval(() => req.read(16), 20);
      req.on('close', () => clearInterval(timer));
    });
    const chunk = Buffer.alloc(64 * 1024);
    const size = 64 * 1024 * 1024;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let sent = 0; sent < size; sent += chunk.byteLength) yield chunk;
    }
    const started = Date.now();
    await assert.rejects(
      request({ method: 'PUT', url: `${url}/up`, settings: plain, headers: { 'content-length': String(size) }, body: source(), timeouts: { headersTimeoutMs: 500 } }),
      (e: unknown) => {
        assert.ok(e instanceof MirrorError && e.code === 'NETWORK', String(e));
        assert.match(e.message, /^PUT http:\/\/127\.0\.0\.1:\d+\/up: timed out waiting for the response$/);
        assert.ok(isRetryableError(e));
        return true;
      },
    );
    assert.ok(Date.now() - started < 10_000);
  });

  it('discard() of a body that trickles ends within the body timeout', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      const timer = setInterval(() => res.write('x'), 20);
      res.on('close', () => clearInterval(timer));
    });
    const res = await request({ method: 'GET', url: `${url}/trickle`, settings: plain, timeouts: { bodyTimeoutMs: 300 } });
    const started = Date.now();
    await res.discard();
    assert.ok(Date.now() - started < 2_000);
  });

  it('a refused connection from a host that answered before is retryable (a restart), and final from one that never did', async () => {
    const s = createServer((_req, res) => res.end('ok'));
    const url = await listen(s);
    const first = await request({ method: 'GET', url: `${url}/v2/`, settings: plain });
    assert.equal(await first.text(), 'ok');
    await close(s);
    await assert.rejects(request({ method: 'GET', url: `${url}/v2/`, settings: plain }), (e: unknown) => {
      assert.ok(e instanceof MirrorError && e.code === 'NETWORK');
      assert.match(e.message, /connection refused/);
      assert.ok(isRetryableError(e), 'retryable: the host answered before');
      return true;
    });
  });

  it('connection refused (a host that never answered) is NETWORK, not retryable, and the URL is redacted', async () => {
    const port = await freePort();
    await assert.rejects(
      request({ method: 'PATCH', url: `http://user:hunter2@127.0.0.1:${port}/v2/r/blobs/uploads/u?_state=SECRETSTATE&digest=sha256:ab`, settings: plain }),
      (e: unknown) => {
        assert.ok(e instanceof MirrorError);
        assert.equal(e.code, 'NETWORK');
        assert.match(e.message, /connection refused/);
        const text = `${e.message} ${e.describe()} ${e.context.url ?? ''}`;
        assert.ok(!text.includes('SECRETSTATE') && !text.includes('hunter2'), text);
        assert.match(text, /_state=REDACTED/);
        assert.ok(!isRetryableError(e));
        return true;
      },
    );
  });

  it('an abort is INTERRUPTED', async () => {
    const url = await serve(() => {
      // never answers
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(request({ method: 'GET', url: `${url}/x`, settings: plain, signal: controller.signal }), (e: unknown) => e instanceof MirrorError && e.code === 'INTERRUPTED');
  });

  it('extra CAs are added to the system roots, never replacing them', () => {
    const opts = tlsOptions({ scheme: 'https', tls: { ca: ['EXTRA'] } });
    // The system roots: Node's bundled roots plus NODE_EXTRA_CA_CERTS (Debian's store when set), which Node itself
    // drops as soon as a `ca` option is given.
    assert.equal(opts.ca?.length, defaultCaCertificates().length + 1);
    assert.ok(defaultCaCertificates().length >= rootCertificates.length);
    assert.ok(opts.ca?.includes('EXTRA'));
    assert.ok(rootCertificates.every((c) => opts.ca?.includes(c)));
    assert.equal(opts.rejectUnauthorized, true);
    assert.equal(tlsOptions({ scheme: 'https', tls: {} }).ca, undefined, 'no extra CA: the default store');
    assert.equal(tlsOptions({ scheme: 'https', tls: { insecureSkipVerify: true } }).rejectUnauthorized, false);
  });

  it('goes through a proxy (CONNECT for https) when settings.proxy is set', async () => {
    const https = createHttpsServer({ cert: certs.server.cert, key: certs.server.key }, (_req, res) => res.end('secure'));
    servers.push(https as unknown as Server);
    const target = await listen(https as unknown as Server, 'https');
    const connects: string[] = [];
    const proxy = createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      connects.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host ?? '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    servers.push(proxy);
    const proxyUrl = await listen(proxy);
    const res = await request({
      method: 'GET',
      url: `${target}/v2/`,
      settings: { scheme: 'https', tls: { ca: [certs.ca.cert] }, proxy: proxyUrl },
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'secure');
    assert.deepEqual(connects, [new URL(target).host]);
  });

  it('closeAll closes the cached dispatchers', async () => {
    const url = await serve((_req, res) => res.end('ok'));
    const res = await request({ method: 'GET', url, settings: plain });
    assert.equal(await res.text(), 'ok');
    await closeAll();
    const again = await request({ method: 'GET', url, settings: plain });
    assert.equal(await again.text(), 'ok', 'a new dispatcher is made after closeAll');
  });
});
