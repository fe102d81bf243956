/**
 * Hostile hops for credential tests, on 127.0.0.1 in front of a plain-HTTP registry:
 * - a *front* proxy (plain or TLS) that the client takes for the registry: it forwards everything, and rewrites the
 *   URLs the registry hands back — upload `Location`s, tag-list `Link`s — to point at another origin, or answers blob
 *   reads with a redirect there;
 * - an *elsewhere* relay at that other origin: it records every request with the Authorization header it came with,
 *   then forwards it to the registry with credentials of its own (so the client's flow can go on through every
 *   upload step), optionally cutting or failing chosen requests.
 * A client that keeps credentials to their origin sends the relay none.
 */
import { createServer as createHttpServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { listenLocal, trackSockets } from './proc.js';

/** SeenRequest is one request a hop received. */
export interface SeenRequest {
  method: string;
  /** Path without the query. */
  path: string;
  /** The Authorization header it carried, if any. */
  authorization?: string | undefined;
}

/** Hop is a running server. */
export interface Hop {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  /** `http://127.0.0.1:PORT` or `https://...` */
  url: string;
  requests: SeenRequest[];
  /** TLS handshakes that failed (a TLS hop: e.g. plain HTTP sent to it); a client hanging up mid-handshake does not count. */
  tlsErrors: number;
  stop(): Promise<void>;
}

/** FrontOptions configure the front proxy. */
export interface FrontOptions {
  /** The registry, `http://127.0.0.1:PORT`. */
  upstream: string;
  /** Serve TLS with this certificate and key (PEM text). Default: plain HTTP. */
  tls?: { cert: string; key: string } | undefined;
  /**
   * Rewrites a URL the registry handed back (absolute, resolved against the front's own URL): return the new URL,
   * or undefined to keep it. `header` says which header it came in.
   */
  rewrite?: ((url: URL, header: 'location' | 'link', req: { method: string; path: string }) => string | undefined) | undefined;
  /**
   * Adds a `Link: <URL>; rel="next"` to a response that has none (distribution 2.8 does not page tag lists):
   * return the URL for this request, or undefined.
   */
  addNextLink?: ((req: { method: string; path: string; query: string }) => string | undefined) | undefined;
  /** Answer blob HEAD/GET requests with `307` to this origin (same path and query) instead of forwarding them. */
  redirectBlobsTo?: string | undefined;
  /**
   * With `tls`: tell the registry the client used https (`X-Forwarded-Proto: https`), as a well-configured
   * TLS-terminating proxy does. false makes the registry hand back `http://` locations. Default: true.
   */
  forwardedProto?: boolean | undefined;
}

/** ElsewhereOptions configure the relay at the other origin. */
export interface ElsewhereOptions {
  /** The registry, `http://127.0.0.1:PORT`. */
  upstream: string;
  /** The Authorization the relay adds when it forwards a request (its own credentials), if any. */
  authorize?: ((req: { method: string; path: string }) => Promise<string | undefined>) | undefined;
  /**
   * Faults: the `nth` (1-based) request matching `method` (and `pathIncludes`) is cut mid-body (`cut`, after 1 KiB is
   * read) or answered with a status and a registry error code (`status`).
   */
  faults?: Array<{ method: string; nth: number; pathIncludes?: string; kind: 'cut' | { status: number; code: string } }> | undefined;
}

/** forward sends a request on to the registry and gives its response headers to `onResponse`. */
function forward(
  agent: Agent,
  upstream: URL,
  req: IncomingMessage,
  headers: Record<string, string | string[] | undefined>,
  onResponse: (upRes: IncomingMessage) => void,
  onError: () => void,
): ReturnType<typeof httpRequest> {
  const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, onResponse);
  up.on('error', onError);
  return up;
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}

/** startFront starts the front proxy. */
export async function startFront(options: FrontOptions): Promise<Hop> {
  const upstream = new URL(options.upstream);
  const agent = new Agent({ keepAlive: true });
  const requests: SeenRequest[] = [];
  let self = '';
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = pathOf(req);
    requests.push({ method, path, authorization: req.headers.authorization });
    if (options.redirectBlobsTo !== undefined && (method === 'HEAD' || method === 'GET') && /\/blobs\/[a-z0-9]+:[a-f0-9]+$/.test(path)) {
      req.resume();
      res.writeHead(307, { location: `${options.redirectBlobsTo}${req.url ?? '/'}`, 'content-length': 0 });
      res.end();
      return;
    }
    const sent = options.tls !== undefined && options.forwardedProto !== false ? { ...req.headers, 'x-forwarded-proto': 'https' } : req.headers;
    const up = forward(
      agent,
      upstream,
      req,
      sent,
      (upRes) => {
        const headers = { ...upRes.headers };
        const location = headers.location;
        if (typeof location === 'string' && options.rewrite) {
          const next = options.rewrite(new URL(location, self), 'location', { method, path });
          if (next !== undefined) headers.location = next;
        }
        if (headers.link === undefined && options.addNextLink) {
          const next = options.addNextLink({ method, path, query: (req.url ?? '').slice(path.length) });
          if (next !== undefined) headers.link = `<${next}>; rel="next"`;
        }
        const link = headers.link;
        if (typeof link === 'string' && options.rewrite) {
          headers.link = link.replace(/<([^>]*)>/g, (whole, target: string) => {
            const next = options.rewrite?.(new URL(target, self), 'link', { method, path });
            return next === undefined ? whole : `<${next}>`;
          });
        }
        res.writeHead(upRes.statusCode ?? 502, headers);
        upRes.pipe(res);
      },
      () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      },
    );
    req.pipe(up);
  };
  const server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createHttpServer(handler);
  const t = trackSockets(server);
  const port = await listenLocal(server);
  self = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const hop: Hop = {
    host: `127.0.0.1:${port}`,
    port,
    url: self,
    requests,
    tlsErrors: 0,
    async stop(): Promise<void> {
      agent.destroy();
      await t.stop();
    },
  };
  // A client that hangs up in the middle of a handshake (a request aborted when its run stopped) is not a failed one.
  server.on('tlsClientError', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'ECONNRESET') hop.tlsErrors++;
  });
  return hop;
}

/** startElsewhere starts the relay at the other origin. */
export async function startElsewhere(options: ElsewhereOptions): Promise<Hop> {
  const upstream = new URL(options.upstream);
  const agent = new Agent({ keepAlive: true });
  const requests: SeenRequest[] = [];
  const counts = new Map<string, number>();
  let self = '';
  const server = createHttpServer((req, res) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = pathOf(req);
    requests.push({ method, path, authorization: req.headers.authorization });
    for (const [i, f] of (options.faults ?? []).entries()) {
      if (f.method !== method || (f.pathIncludes !== undefined && !path.includes(f.pathIncludes))) continue;
      const n = (counts.get(String(i)) ?? 0) + 1;
      counts.set(String(i), n);
      if (n !== f.nth) continue;
      if (f.kind === 'cut') {
        let seen = 0;
        req.on('data', (chunk: Buffer) => {
          seen += chunk.byteLength;
          if (seen >= 1024) req.socket.destroy();
        });
        req.on('end', () => req.socket.destroy());
        return;
      }
      const body = JSON.stringify({ errors: [{ code: f.kind.code, message: 'injected by the relay' }] });
      req.resume();
      req.on('end', () => {
        res.writeHead(f.kind === 'cut' ? 500 : f.kind.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    void (async () => {
      const own = await options.authorize?.({ method, path });
      // The relay speaks for itself: its Host makes the registry's next Location name the relay again.
      const headers: Record<string, string | string[] | undefined> = { ...req.headers, host: self.replace(/^https?:\/\//, '') };
      delete headers.authorization;
      if (own !== undefined) headers.authorization = own;
      const up = forward(
        agent,
        upstream,
        req,
        headers,
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        },
        () => {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        },
      );
      req.pipe(up);
    })();
  });
  const t = trackSockets(server);
  const port = await listenLocal(server);
  self = `http://127.0.0.1:${port}`;
  return {
    host: `127.0.0.1:${port}`,
    port,
    url: self,
    requests,
    tlsErrors: 0,
    async stop(): Promise<void> {
      agent.destroy();
      await t.stop();
    },
  };
}
