/**
 * A forward HTTP proxy for tests, on 127.0.0.1 with a free port: `CONNECT host:port` opens a tunnel to the target
 * (what clients do for https, and what undici's ProxyAgent does for every target), and absolute-URI requests
 * (`GET http://host:port/path`) are forwarded as plain HTTP. Every target `host:port` that passed through is
 * recorded, in order. Only loopback targets are allowed (tests never leave 127.0.0.1); others get 403.
 * Tunnels can be throttled (bytes per second in each direction, all tunnels together) to make a run last longer
 * than a token's lifetime.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, isIP, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { listenLocal } from './proc.js';

/** ConnectProxyOptions tune the proxy. */
export interface ConnectProxyOptions {
  /** Pass at most this many bytes per second in each direction, all tunnels together. Default: no limit. */
  bytesPerSecond?: number | undefined;
}

/** ProxiedTarget is one thing that went through the proxy. */
export interface ProxiedTarget {
  /** `CONNECT` for a tunnel, else the method of an absolute-URI request. */
  method: string;
  /** `host:port` of the target. */
  target: string;
  /** HTTP status the proxy answered with (200 for an established tunnel). */
  status: number;
}

/** ConnectProxy is a running proxy. */
export interface ConnectProxy {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT`, the value for `HTTPS_PROXY`/`HTTP_PROXY`. */
  url: string;
  /** Everything that went through, in order. */
  log: ProxiedTarget[];
  /** The distinct `host:port` targets seen. */
  targets(): string[];
  /** Clears the log. */
  reset(): void;
  /** Closes every tunnel and connection and stops listening. */
  stop(): Promise<void>;
}

/** isLoopback tells whether a host name is this machine. */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** splitTarget splits `host:port` (IPv6 in brackets). */
function splitTarget(text: string, defaultPort: number): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m || m[1] === undefined) return undefined;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!(port > 0 && port < 65536)) return undefined;
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** Limiter is the schedule shared by every throttled tunnel direction: the rate is for the proxy as a whole. */
interface Limiter {
  nextFree: number;
}

/** Throttle delays chunks so that, with every other Throttle of its limiter, at most `rate` bytes per second pass. */
class Throttle extends Transform {
  private readonly slice: number;

  constructor(
    private readonly rate: number,
    private readonly limiter: Limiter,
  ) {
    super();
    this.slice = Math.max(1, Math.floor(rate / 20));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const pieces: Buffer[] = [];
    for (let i = 0; i < chunk.length; i += this.slice) pieces.push(chunk.subarray(i, i + this.slice));
    const step = (k: number): void => {
      if (k >= pieces.length || this.destroyed) {
        done();
        return;
      }
      const piece = pieces[k] as Buffer;
      const now = Date.now();
      const start = Math.max(now, this.limiter.nextFree);
      this.limiter.nextFree = start + (piece.length / this.rate) * 1000;
      setTimeout(() => {
        this.push(piece);
        step(k + 1);
      }, start - now);
    };
    step(0);
  }
}

/** startConnectProxy starts the proxy on 127.0.0.1 with a free port. */
export async function startConnectProxy(options: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const log: ProxiedTarget[] = [];
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const rate = options.bytesPerSecond;
  // One schedule per direction, shared by every tunnel: the limit is the proxy's, as on a narrow link.
  const upLimit: Limiter = { nextFree: 0 };
  const downLimit: Limiter = { nextFree: 0 };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = (req.method ?? 'GET').toUpperCase();
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:') throw new Error('not http');
    } catch {
      log.push({ method, target: '', status: 400 });
      res.writeHead(400, { 'content-type': 'text/plain' }).end('absolute http:// URI expected\n');
      return;
    }
    const target = `${url.hostname.includes(':') ? `[${url.hostname}]` : url.hostname}:${url.port || '80'}`;
    if (!isLoopback(url.hostname)) {
      log.push({ method, target, status: 403 });
      res.writeHead(403, { 'content-type': 'text/plain' }).end('only loopback targets\n');
      return;
    }
    log.push({ method, target, status: 200 });
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    delete headers['proxy-authorization'];
    const up = httpRequest(
      { host: url.hostname, port: Number(url.port || '80'), method, path: `${url.pathname}${url.search}`, headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('socket', track);
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });

  server.on('connection', track);

  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const parsed = splitTarget(req.url ?? '', 443);
    const target = req.url ?? '';
    client.on('error', () => {});
    if (!parsed || !isLoopback(parsed.host)) {
      log.push({ method: 'CONNECT', target, status: parsed ? 403 : 400 });
      client.end(`HTTP/1.1 ${parsed ? '403 Forbidden' : '400 Bad Request'}\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const upstream = connect(parsed.port, parsed.host);
    track(upstream);
    let established = false;
    upstream.on('error', () => {
      if (!established && !client.destroyed) {
        log.push({ method: 'CONNECT', target, status: 502 });
        client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
      }
    });
    upstream.once('connect', () => {
      established = true;
      log.push({ method: 'CONNECT', target, status: 200 });
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      // An end (FIN) travels to the other side after the bytes before it (which a throttle may still hold);
      // a side that breaks or goes away without an end takes the other one down at once.
      const link = (from: Socket, to: Socket, limiter: Limiter): void => {
        if (rate !== undefined && rate > 0) from.pipe(new Throttle(rate, limiter)).pipe(to);
        else from.pipe(to);
        from.on('close', () => {
          if (!from.readableEnded) to.destroy();
        });
      };
      link(client, upstream, upLimit);
      link(upstream, client, downLimit);
    });
  });

  const port = await listenLocal(server);
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    log,
    targets: () => [...new Set(log.filter((e) => e.status === 200).map((e) => e.target))],
    reset(): void {
      log.length = 0;
    },
    async stop(): Promise<void> {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
