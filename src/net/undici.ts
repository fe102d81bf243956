/**
 * undici's `Agent` and `ProxyAgent`, imported from their own modules. undici's index also loads its fetch, WebSocket,
 * cache and mock modules, and those read Node's global `File` and `Headers`, which makes Node load its own bundled
 * copy of undici as well: measured 0.13 -> 0.09 CPU-seconds to load (a bare `node` start is 0.05), on every run of
 * every command. The `request` verb is what undici's index adds to every dispatcher; it is added here the same way.
 * Static imports (types in ./undici-modules.d.ts) let the build's bundle (scripts/bundle.mjs) take these modules in.
 * The package version is pinned by package-lock.json, and every HTTP test goes through these two classes.
 */
import DispatcherClass from 'undici/lib/dispatcher/dispatcher.js';
import api from 'undici/lib/api/index.js';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import ProxyAgentClass from 'undici/lib/dispatcher/proxy-agent.js';

if (typeof (DispatcherClass.prototype as { request?: unknown }).request !== 'function') {
  Object.assign(DispatcherClass.prototype, api);
}

/** Agent is undici's connection pool per origin. */
export const Agent = AgentClass;
/** ProxyAgent is undici's agent through an HTTP(S) proxy (CONNECT for https). */
export const ProxyAgent = ProxyAgentClass;
