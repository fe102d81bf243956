/**
 * Connecting to a registry for `copy`, `sync` and `inspect`: one client per (host, side), and skopeo's
 * `--tls-verify=false`, which skips certificate checks and also accepts a registry that answers in plain HTTP.
 */
import type { CredentialResolver } from '../../auth/types.js';
import { isMirrorError } from '../../errors/index.js';
import type { EventSink } from '../../events/index.js';
import type { HttpTimeouts } from '../../net/http.js';
import type { HostSettingsResolver, RetryOptions } from '../../net/types.js';
import { RegistryClient, type RequestLimiter, type RequestLimits } from '../../registry/index.js';

/** RegistrySide is how one side of a copy reaches registries. */
export interface RegistrySide {
  settings: HostSettingsResolver;
  credentials: CredentialResolver;
  retry?: RetryOptions | undefined;
  timeouts?: HttpTimeouts | undefined;
  events?: EventSink | undefined;
  /** false: skopeo's `--tls-verify=false` (no certificate checks, plain HTTP accepted). Default: true. */
  tlsVerify?: boolean | undefined;
  /** Plain HTTP asked for explicitly (`http://`, `--plain-http`). Default: false. */
  plainHttp?: boolean | undefined;
  /** Per-host request bounds (a limiter is shared by every client given it). Default: none. */
  limits?: RequestLimits | RequestLimiter | undefined;
}

/**
 * connectRegistry gives a client for `host` that answers: it pings (learning the auth challenge, proving the
 * credentials when `authenticate`) and, with `tlsVerify: false`, falls back to plain HTTP when the registry has no TLS.
 */
export async function connectRegistry(
  host: string,
  side: RegistrySide,
  options: { authenticate?: boolean | undefined; signal?: AbortSignal | undefined } = {},
): Promise<{ client: RegistryClient; scheme: 'http' | 'https' }> {
  const make = (scheme: 'http' | 'https'): RegistryClient =>
    new RegistryClient({ host, scheme, settings: side.settings, credentials: side.credentials, retry: side.retry, timeouts: side.timeouts, events: side.events, limits: side.limits });
  const first: 'http' | 'https' = side.plainHttp ? 'http' : 'https';
  const client = make(first);
  try {
    const ping = await client.ping({ authenticate: options.authenticate, signal: options.signal });
    return { client, scheme: ping.scheme };
  } catch (e) {
    const plainAnswer = isMirrorError(e) && e.code === 'TLS' && /plain HTTP/.test(e.message);
    if (first === 'https' && side.tlsVerify === false && plainAnswer) {
      const plain = make('http');
      const ping = await plain.ping({ authenticate: options.authenticate, signal: options.signal });
      return { client: plain, scheme: ping.scheme };
    }
    throw e;
  }
}
