/**
 * A fault-injecting reverse proxy for tests, on 127.0.0.1 in front of a plain-HTTP registry. It forwards requests
 * with their Host header (so the registry's Location headers point back at the proxy) and streams bodies both ways.
 * Rules inject faults on chosen requests (by count or seeded probability): answer 503, answer 429 with
 * `Retry-After: 1`, cut the connection in the middle of a request body or of a response, or hold a request back for a
 * while before forwarding it. It counts injected faults and requests, and records every request (method, path, and
 * the registry's status once it answers) so tests can assert on the traffic.
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenLocal, trackSockets } from './proc.js';

/**
 * FaultKind is what a rule does to a request: answer 503 or 429 itself, cut the connection in the request or the
 * response body, `stall-response` (forward, send the response headers and the first `afterBytes` bytes of the body,
 * then nothing more while the connection stays open), `delay` (hold the request `delayMs`, then forward it), or
 * `respond` (answer `status` with `body` itself; the registry never sees the request).
 */
export type FaultKind = 'status-503' | 'status-429' | 'cut-request' | 'cut-response' | 'stall-response' | 'delay' | 'respond';

/** FaultRule chooses requests and the fault to inject into them. */
export interface FaultRule {
  kind: FaultKind;
  /** Only requests with this method. Default: any. */
  method?: string | undefined;
  /** Only requests whose path contains this text. Default: any. */
  pathIncludes?: string | undefined;
  /** Only requests whose query string contains this text (`mount=`, say). Default: any. */
  queryIncludes?: string | undefined;
  /** Only requests whose Content-Length is at least this (a body limit of a proxy in front, say). Default: any. */
  minBodyBytes?: number | undefined;
  /** Inject on these matching requests (1-based count of requests this rule matched). */
  nth?: number[] | undefined;
  /** Or inject with this probability per matching request (seeded: the same seed gives the same schedule). */
  probability?: number | undefined;
  /** At most this many injections. Default: unlimited. */
  times?: number | undefined;
  /** Only while this holds (asked as each request comes, e.g. "once another fault was injected"). Default: always. */
  when?: (() => boolean) | undefined;
  /** cut-request: body bytes read before the cut; cut-response: body bytes sent before the cut. Default: 1024. */
  afterBytes?: number | undefined;
  /** cut-request: forward the bytes read to the registry before cutting. Default: false (it never sees the request). */
  forwardBeforeCut?: boolean | undefined;
  /** delay: how long the request is held (its body unread) before it is forwarded. Default: 500. */
  delayMs?: number | undefined;
  /** respond: the status to answer. Default: 500. */
  status?: number | undefined;
  /** respond: the body (JSON text) to answer. Default: none. */
  body?: string | undefined;
  /** respond: more headers to answer with (a `Link`, say). Default: none. */
  headers?: Record<string, string> | undefined;
}

/** FaultProxyOptions configure the proxy. */
export interface FaultProxyOptions {
  /** The registry, `http://127.0.0.1:PORT`. */
  upstream: string;
  /** Fault rules, first match wins. Default: none (a recording proxy). */
  rules?: FaultRule[] | undefined;
  /** Seed for probability rules. Default: 1. */
  seed?: number | undefined;
}

/** RecordedRequest is one request that went through the proxy. */
export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** The query string, without its `?` (empty when none). */
  query: string;
  /** The fault injected, if any. */
  fault?: FaultKind | undefined;
  /** The request's Range header, if any. */
  range?: string | undefined;
  /** The request's Content-Length (0 when it has none). */
  bodyBytes: number;
  /** Response body bytes passed back to the client (counted as they go). */
  bytesOut: number;
  /** The registry's HTTP status, once it has answered (set before the answer is passed on). */
  status?: number | undefined;
  /** When the request arrived (Date.now()). */
  at: number;
}

/** FaultProxy is a running proxy. */
export interface FaultProxy {
  /** `127.0.0.1:PORT` */
  host: string;
  url: string;
  /** Every request seen, in order. */
  requests: RecordedRequest[];
  /** Injected faults by kind. */
  injected: Record<FaultKind, number>;
  /** Replaces the rules (and their counters). */
  setRules(rules: FaultRule[]): void;
  /** Clears the request log and the counters. */
  reset(): void;
  stop(): Promise<void>;
}

/** mulberry32 is a small seeded PRNG. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** DEFAULT_CUT_AFTER_BYTES is where a cut happens when a rule does not say. */
export const DEFAULT_CUT_AFTER_BYTES = 1024;

/** startFaultProxy starts the proxy on 127.0.0.1 with a free port. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  const agent = new Agent({ keepAlive: true });
  const random = mulberry32(options.seed ?? 1);
  let rules: Array<{ rule: FaultRule; matched: number; injected: number }> = [];
  const requests: RecordedRequest[] = [];
  const injected: Record<FaultKind, number> = {
    'status-503': 0,
    'status-429': 0,
    'cut-request': 0,
    'cut-response': 0,
    'stall-response': 0,
    delay: 0,
    respond: 0,
  };
  const timers = new Set<NodeJS.Timeout>();

  const setRules = (next: FaultRule[]): void => {
    rules = next.map((rule) => ({ rule, matched: 0, injected: 0 }));
  };
  setRules(options.rules ?? []);

  const choose = (method: string, path: string, query: string, bodyBytes: number): FaultRule | undefined => {
    for (const r of rules) {
      if (r.rule.method !== undefined && r.rule.method.toUpperCase() !== method) continue;
      if (r.rule.minBodyBytes !== undefined && bodyBytes < r.rule.minBodyBytes) continue;
      if (r.rule.pathIncludes !== undefined && !path.includes(r.rule.pathIncludes)) continue;
      if (r.rule.queryIncludes !== undefined && !query.includes(r.rule.queryIncludes)) continue;
      if (r.rule.when !== undefined && !r.rule.when()) continue;
      r.matched++;
      if (r.rule.times !== undefined && r.injected >= r.rule.times) continue;
      const hit = r.rule.nth !== undefined ? r.rule.nth.includes(r.matched) : r.rule.probability !== undefined ? random() < r.rule.probability : false;
      if (!hit) continue;
      r.injected++;
      injected[r.rule.kind]++;
      return r.rule;
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, cutResponseAfter?: number, record?: RecordedRequest, stallAfter?: number): ReturnType<typeof httpRequest> => {
    const up = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (upRes) => {
        if (record !== undefined) record.status = upRes.statusCode;
        if (record !== undefined) upRes.on('data', (chunk: Buffer) => (record.bytesOut += chunk.byteLength));
        if (stallAfter !== undefined) {
          // The headers and the first bytes, then silence on an open connection.
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          res.flushHeaders();
          let sent = 0;
          upRes.on('data', (chunk: Buffer) => {
            if (sent >= stallAfter) return;
            const n = Math.min(chunk.byteLength, stallAfter - sent);
            if (n > 0) res.write(chunk.subarray(0, n));
            sent += n;
          });
          return;
        }
        if (cutResponseAfter !== undefined) {
          const length = Number(upRes.headers['content-length'] ?? '0');
          if (!(length > cutResponseAfter)) {
            // Nothing worth half-sending: the response is lost entirely.
            upRes.resume();
            req.socket.destroy();
            return;
          }
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          let sent = 0;
          upRes.on('data', (chunk: Buffer) => {
            if (sent >= cutResponseAfter) return;
            const n = Math.min(chunk.byteLength, cutResponseAfter - sent);
            res.write(chunk.subarray(0, n));
            sent += n;
            if (sent >= cutResponseAfter) {
              upRes.destroy();
              setTimeout(() => req.socket.destroy(), 20);
            }
          });
          return;
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    return up;
  };

  const server = createServer((req, res) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const [path, query] = q < 0 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
    const bodyBytes = Number(req.headers['content-length'] ?? 0) || 0;
    const fault = choose(method, path, query, bodyBytes);
    const record: RecordedRequest = { method, path, query, fault: fault?.kind, range: req.headers.range, bodyBytes, bytesOut: 0, at: Date.now() };
    requests.push(record);
    if (fault === undefined) {
      req.pipe(forward(req, res, undefined, record));
      return;
    }
    const after = fault.afterBytes ?? DEFAULT_CUT_AFTER_BYTES;
    switch (fault.kind) {
      case 'status-503':
      case 'status-429': {
        const status = fault.kind === 'status-503' ? 503 : 429;
        const body = JSON.stringify({
          errors: [{ code: status === 503 ? 'UNAVAILABLE' : 'TOOMANYREQUESTS', message: 'injected by the fault proxy' }],
        });
        req.resume();
        req.on('end', () => {
          const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
          if (status === 429) headers['retry-after'] = '1';
          res.writeHead(status, headers);
          res.end(body);
        });
        return;
      }
      case 'cut-request': {
        let seen = 0;
        const up = fault.forwardBeforeCut ? forward(req, res) : undefined;
        const cut = (): void => {
          req.socket.destroy();
          up?.destroy();
        };
        req.on('data', (chunk: Buffer) => {
          if (seen >= after) return;
          const n = Math.min(chunk.byteLength, after - seen);
          seen += n;
          if (up !== undefined) up.write(chunk.subarray(0, n));
          if (seen >= after) {
            req.pause();
            // Let the forwarded bytes reach the registry before the cut.
            if (up !== undefined) setTimeout(cut, 50);
            else cut();
          }
        });
        req.on('end', () => {
          if (seen < after) cut();
        });
        return;
      }
      case 'cut-response': {
        req.pipe(forward(req, res, after, record));
        return;
      }
      case 'stall-response': {
        req.pipe(forward(req, res, undefined, record, fault.afterBytes ?? 0));
        return;
      }
      case 'delay': {
        req.pause();
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (req.socket.destroyed) return;
          req.pipe(forward(req, res, undefined, record));
          req.resume();
        }, fault.delayMs ?? 500);
        timers.add(timer);
        return;
      }
      case 'respond': {
        const body = fault.body ?? '';
        req.resume();
        req.on('end', () => {
          res.writeHead(fault.status ?? 500, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...fault.headers });
          res.end(body);
        });
        return;
      }
    }
  });
  const tracker = trackSockets(server);
  const port = await listenLocal(server);
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    injected,
    setRules,
    reset(): void {
      requests.length = 0;
      for (const k of Object.keys(injected) as FaultKind[]) injected[k] = 0;
      setRules(rules.map((r) => r.rule));
    },
    async stop(): Promise<void> {
      for (const t of timers) clearTimeout(t);
      agent.destroy();
      await tracker.stop();
    },
  };
}
