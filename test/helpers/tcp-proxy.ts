/**
 * A TCP pass-through proxy on 127.0.0.1 for outage tests. Clients connect to it as to the registry; it copies bytes
 * both ways, optionally at a limited rate (so a push lasts long enough to be hit at a known point), counts the bytes
 * sent upstream, and can go away for a while as a restarting server does: every open connection is reset and the
 * port refuses connections (nothing listens on it) until it is listened on again, on the same port.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { listenLocal } from './proc.js';

/** TcpProxyOptions configure {@link startTcpProxy}. */
export interface TcpProxyOptions {
  /** Port of the upstream server on 127.0.0.1. */
  upstreamPort: number;
  /** Client-to-upstream bytes per second, all connections together. Default: unlimited. */
  upBytesPerSecond?: number | undefined;
}

/** TcpProxy is a running proxy. */
export interface TcpProxy {
  port: number;
  /** `127.0.0.1:PORT` */
  host: string;
  /** Client-to-upstream bytes so far. */
  readonly bytesUp: number;
  /** Resolves once at least `bytes` went upstream (bounded by `timeoutMs`, default 60 s: rejects after). */
  whenBytesUp(bytes: number, timeoutMs?: number): Promise<void>;
  /** down resets every connection and stops listening: connections are refused until {@link TcpProxy.up}. */
  down(): Promise<void>;
  /** up listens on the same port again. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

/** startTcpProxy starts a proxy on a free port of 127.0.0.1. */
export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let bytesUp = 0;
  const waiters: Array<{ bytes: number; resolve: () => void }> = [];
  // Rate limiting: the time at which the bytes sent so far would have gone at the rate; a client ahead of it waits.
  const rate = options.upBytesPerSecond;
  let nextFree = 0;

  const onUp = (n: number): void => {
    bytesUp += n;
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (bytesUp >= w.bytes) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };

  const handle = (client: Socket): void => {
    const upstream = connect(options.upstreamPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('error', drop);
    upstream.on('error', drop);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      onUp(chunk.byteLength);
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
      if (rate !== undefined) {
        const now = Date.now();
        nextFree = Math.max(now, nextFree) + (chunk.byteLength / rate) * 1000;
        const waitMs = nextFree - now;
        if (waitMs > 5) {
          client.pause();
          setTimeout(() => {
            if (!client.destroyed) client.resume();
          }, waitMs);
        }
      }
    });
  };

  let server: Server = createServer(handle);
  const port = await listenLocal(server);

  const listenAgain = async (): Promise<void> => {
    server = createServer(handle);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  };

  const closeServer = (): Promise<void> =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
    });

  return {
    port,
    host: `127.0.0.1:${port}`,
    get bytesUp() {
      return bytesUp;
    },
    whenBytesUp(bytes: number, timeoutMs = 60_000): Promise<void> {
      if (bytesUp >= bytes) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${bytesUp} of ${bytes} bytes went upstream within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          bytes,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    down: closeServer,
    up: listenAgain,
    stop: closeServer,
  };
}
