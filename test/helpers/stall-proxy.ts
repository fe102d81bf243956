/**
 * A proxy in front of a registry that lets a copy start and then holds it, so a test can interrupt it mid-transfer:
 * `uploads` takes the body of every blob upload (PATCH/PUT) and never answers; `blob-gets` sends the first `after`
 * bytes of every blob GET larger than that and then holds the connection open. Everything else is forwarded.
 */
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { listenLocal, trackSockets } from './proc.js';

/** StallMode says what the proxy holds. */
export type StallMode = { stall: 'uploads' } | { stall: 'blob-gets'; after: number };

/** StallProxy is a running stall proxy. */
export interface StallProxy {
  /** `127.0.0.1:PORT` */
  host: string;
  /** Requests held so far. */
  readonly stalled: number;
  stop(): Promise<void>;
}

/** startStallProxy starts the proxy on 127.0.0.1 with a free port, in front of `upstream` (`http://127.0.0.1:PORT`). */
export async function startStallProxy(upstream: string, mode: StallMode): Promise<StallProxy> {
  const up = new URL(upstream);
  const state = { stalled: 0 };
  const server = createServer((req: IncomingMessage, res) => {
    if (mode.stall === 'uploads' && (req.method === 'PATCH' || req.method === 'PUT') && (req.url ?? '').includes('/blobs/uploads/')) {
      // Take the body and never answer: the client waits until it is interrupted.
      state.stalled++;
      req.resume();
      return;
    }
    const out = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const length = Number(upRes.headers['content-length'] ?? '0');
      if (mode.stall !== 'blob-gets' || req.method !== 'GET' || !(req.url ?? '').includes('/blobs/') || length <= mode.after) {
        upRes.pipe(res);
        return;
      }
      const after = mode.after;
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (sent >= after) return;
        const n = Math.min(chunk.byteLength, after - sent);
        res.write(chunk.subarray(0, n));
        sent += n;
        if (sent >= after) {
          state.stalled++;
          upRes.pause();
        }
      });
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  const tracker = trackSockets(server);
  const port = await listenLocal(server);
  return {
    host: `127.0.0.1:${port}`,
    get stalled() {
      return state.stalled;
    },
    async stop() {
      await tracker.stop();
    },
  };
}
