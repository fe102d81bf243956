/**
 * A hostile reverse proxy on 127.0.0.1 in front of a real registry: it forwards every request (Host header kept, so
 * the registry's Location headers point back at it), except those `answer` takes over, which it answers itself,
 * with what the request carried at hand (to quote the bearer token back, or to put control characters in a message).
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { listenLocal, trackSockets } from '../helpers/proc.js';

/** HostileAnswer is a response the proxy sends instead of the registry's. */
export interface HostileAnswer {
  status: number;
  body: string;
  headers?: Record<string, string> | undefined;
}

/** HostileProxy is a running proxy. */
export interface HostileProxy {
  /** `127.0.0.1:PORT` */
  host: string;
  /** How many requests `answer` took over. */
  answered(): number;
  stop(): Promise<void>;
}

/** startHostileProxy starts the proxy in front of `upstream` (`http://127.0.0.1:PORT`). */
export async function startHostileProxy(
  upstream: string,
  answer: (req: { method: string; path: string; headers: IncomingHttpHeaders }) => HostileAnswer | undefined,
): Promise<HostileProxy> {
  const up = new URL(upstream);
  const agent = new Agent({ keepAlive: true });
  let answered = 0;
  const server = createServer((req, res) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const own = answer({ method, path, headers: req.headers });
    if (own !== undefined) {
      answered++;
      req.resume();
      req.on('end', () => {
        res.writeHead(own.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(own.body), ...own.headers });
        res.end(own.body);
      });
      return;
    }
    const forward = httpRequest({ host: up.hostname, port: up.port, method, path: req.url, headers: req.headers, agent }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
  const tracker = trackSockets(server);
  const port = await listenLocal(server);
  return {
    host: `127.0.0.1:${port}`,
    answered: () => answered,
    async stop() {
      agent.destroy();
      await tracker.stop();
    },
  };
}
