#!/usr/bin/env node
// A recording (and optionally faulting) reverse proxy on 127.0.0.1 for the copy bench, in front of a plain-HTTP
// registry. It forwards every request with its Host header (so the registry's Location headers point back at the
// proxy), streams bodies both ways, and records per request: method, path, Range, status, request body bytes and
// response body bytes. With --cut-get TEXT:BYTES the first GET whose path contains TEXT has its response cut after
// BYTES body bytes (the connection is destroyed), as a network would cut it.
//
//   node bench/bench-proxy.mjs http://127.0.0.1:REGISTRY_PORT [--cut-get TEXT:BYTES]
//
// Prints `127.0.0.1:PORT` on its first line once it listens. `GET /__bench/stats` answers the requests recorded so far
// (JSON), `POST /__bench/reset` clears them. Runs until SIGTERM or SIGINT.
import { Agent, createServer, request } from 'node:http';

const upstream = new URL(process.argv[2] ?? '');
let cut;
for (let i = 3; i < process.argv.length; i++) {
  if (process.argv[i] === '--cut-get') {
    const spec = process.argv[++i] ?? '';
    const at = spec.lastIndexOf(':');
    cut = { text: spec.slice(0, at), bytes: Number(spec.slice(at + 1)), done: false };
  }
}
const agent = new Agent({ keepAlive: true });
let records = [];

const server = createServer((req, res) => {
  const path = (req.url ?? '').split('?')[0];
  if (path === '/__bench/stats') return res.end(JSON.stringify(records));
  if (path === '/__bench/reset') {
    records = [];
    return res.end('{}');
  }
  const rec = { method: req.method, path, range: req.headers.range, status: 0, bytesIn: 0, bytesOut: 0, cut: false };
  records.push(rec);
  const cutAfter = cut && !cut.done && req.method === 'GET' && path.includes(cut.text) ? cut.bytes : undefined;
  if (cutAfter !== undefined) cut.done = true;
  const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
    rec.status = upRes.statusCode ?? 0;
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    upRes.on('data', (chunk) => {
      if (cutAfter !== undefined && rec.bytesOut + chunk.byteLength >= cutAfter) {
        const n = cutAfter - rec.bytesOut;
        rec.bytesOut += n;
        rec.cut = true;
        res.write(chunk.subarray(0, n), () => req.socket.destroy());
        upRes.destroy();
        return;
      }
      rec.bytesOut += chunk.byteLength;
      if (!res.write(chunk)) {
        upRes.pause();
        res.once('drain', () => upRes.resume());
      }
    });
    upRes.on('end', () => res.end());
    upRes.on('error', () => req.socket.destroy());
  });
  up.on('error', () => req.socket.destroy());
  req.on('data', (chunk) => {
    rec.bytesIn += chunk.byteLength;
    if (!up.write(chunk)) {
      req.pause();
      up.once('drain', () => req.resume());
    }
  });
  req.on('end', () => up.end());
  req.on('error', () => up.destroy());
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`127.0.0.1:${typeof address === 'object' && address ? address.port : 0}\n`);
});
const stop = () => {
  server.close();
  server.closeAllConnections?.();
  agent.destroy();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
