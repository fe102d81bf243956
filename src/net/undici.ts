/**
 * undici's `Agent` and `ProxyAgent`, loaded from their own modules. undici's index also loads its fetch, WebSocket,
 * cache and mock modules, and those read Node's global `File` and `Headers`, which makes Node load its own bundled
 * copy of undici as well: measured 0.13 -> 0.09 CPU-seconds to load (a bare `node` start is 0.05), on every run of
 * every command. The `request` verb is what undici's index adds to every dispatcher; it is added here the same way.
 * The package version is pinned by package-lock.json, and every HTTP test goes through these two classes.
 */
import { createRequire } from 'node:module';
import type * as undici from 'undici';

const load = createRequire(import.meta.url);
const Dispatcher = load('undici/lib/dispatcher/dispatcher.js') as typeof undici.Dispatcher;
if (typeof (Dispatcher.prototype as { request?: unknown }).request !== 'function') {
  Object.assign(Dispatcher.prototype, load('undici/lib/api/index.js') as object);
}

/** Agent is undici's connection pool per origin. */
export const Agent = load('undici/lib/dispatcher/agent.js') as typeof undici.Agent;
/** ProxyAgent is undici's agent through an HTTP(S) proxy (CONNECT for https). */
export const ProxyAgent = load('undici/lib/dispatcher/proxy-agent.js') as typeof undici.ProxyAgent;
