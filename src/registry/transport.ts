/**
 * The request plumbing shared by the registry verbs: where the registry is (scheme chosen through the
 * HostSettingsResolver), the Authorization header for the scopes a request needs, the 401 flow, and bounded retries.
 */
import { MirrorError, abortError, redactUrl } from '../errors/index.js';
import { noEvents, type EventSink } from '../events/index.js';
import { request, type HttpResponse, type HttpTimeouts, type RequestBody } from '../net/http.js';
import { withRetry } from '../net/retry.js';
import type { HostSettings, HostSettingsResolver, RetryOptions } from '../net/types.js';
import type { CredentialResolver } from '../auth/types.js';
import { Authenticator, newAuthAttempt, TokenRefusedError, type Scope } from './auth.js';
import { parseErrorBody, registryError, type RegistryErrorContext, ERROR_BODY_LIMIT } from './errors.js';
import type { RequestLimiter } from './limit.js';

/** MAX_AUTH_ROUNDS bounds how often one request is sent again after a 401. */
export const MAX_AUTH_ROUNDS = 4;

/** TransportOptions configure a {@link RegistryTransport}. */
export interface TransportOptions {
  host: string;
  /** Scheme asked of the HostSettingsResolver (it may answer `http` for plain-HTTP registries). */
  scheme: 'http' | 'https';
  settings: HostSettingsResolver;
  credentials: CredentialResolver;
  retry: RetryOptions;
  events: EventSink;
  userAgent: string;
  timeouts?: HttpTimeouts | undefined;
  tokenMarginMs?: number | undefined;
  /** Bounds on the requests sent to this host (see `./limit.ts`). Default: none. */
  limiter?: RequestLimiter | undefined;
}

/** SendOptions describe one logical request to the registry host. */
export interface SendOptions {
  method: string;
  /** A path (`/v2/...`) or an absolute URL on the registry host (upload locations). */
  url: string | URL;
  /** The scopes a bearer token must carry for this request. */
  scopes: readonly Scope[];
  headers?: Record<string, string> | undefined;
  /** Makes the body for each send; called again after a 401 only when `replayable`. */
  body?: (() => RequestBody) | undefined;
  /** Whether the body can be made again (bytes in memory, a reopenable source). Default: true. */
  replayable?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Ask the credential resolver again once when the credential is refused. Default: true. */
  reresolve?: boolean | undefined;
  timeouts?: HttpTimeouts | undefined;
}

/** ReplayNeededError says a 401 answered a request whose body cannot be sent again; auth was renewed. */
export class ReplayNeededError extends MirrorError {
  constructor(method: string, url: string) {
    super('AUTH', `${method} was refused (401) and its body cannot be sent again`, { method, url, status: 401, phase: 'auth' });
    this.name = 'ReplayNeededError';
  }
}

/**
 * HandedUrlError refuses a URL the registry handed back (an upload `Location`, a `Link`) that would take the request
 * from https down to plain http on the registry's own host (the sign of a TLS-terminating proxy that does not pass
 * `X-Forwarded-Proto`), or to a scheme that is not http(s). Nothing is sent there. A `TLS` error: it concerns the
 * whole run, like other scheme mismatches between client and registry. Not retryable.
 */
export class HandedUrlError extends MirrorError {
  /** Marks the error as final for the retry policy. */
  readonly retryable = false as const;

  constructor(message: string, options: ConstructorParameters<typeof MirrorError>[2]) {
    super('TLS', message, options);
    this.name = 'HandedUrlError';
  }
}

/** RegistryTransport sends authenticated requests to one registry host. */
export class RegistryTransport {
  readonly host: string;
  readonly auth: Authenticator;
  readonly events: EventSink;
  readonly retry: RetryOptions;
  private readonly options: TransportOptions;
  private base: Promise<{ base: URL; settings: HostSettings }> | undefined;
  /** Other origins already reported (debug) as reached without credentials. */
  private readonly elsewhere = new Set<string>();

  constructor(options: TransportOptions) {
    this.options = options;
    this.host = options.host;
    this.events = options.events ?? noEvents;
    this.retry = options.retry;
    this.auth = new Authenticator({
      host: options.host,
      credentials: options.credentials,
      settings: options.settings,
      events: this.events,
      retry: options.retry,
      timeouts: options.timeouts,
      userAgent: options.userAgent,
      tokenMarginMs: options.tokenMarginMs,
      registryScheme: async () => (await this.endpoint()).settings.scheme,
    });
  }

  /** endpoint gives the base URL (`https://host:port`) and the settings of the registry host. */
  endpoint(): Promise<{ base: URL; settings: HostSettings }> {
    if (this.base === undefined) {
      const p = (async () => {
        const settings = await this.options.settings.forHost(this.host, this.options.scheme);
        return { base: new URL(`${settings.scheme}://${endpointHost(this.host)}`), settings };
      })();
      this.base = p;
      p.catch(() => {
        if (this.base === p) this.base = undefined;
      });
    }
    return this.base;
  }

  /** url resolves a path or absolute URL against the registry's base URL. */
  async url(pathOrUrl: string | URL): Promise<URL> {
    const { base } = await this.endpoint();
    return new URL(String(pathOrUrl), base);
  }

  /** settingsFor gives the settings to reach another host (a redirect target, a token realm). */
  settingsFor(url: URL): Promise<HostSettings> {
    return this.options.settings.forHost(url.host, url.protocol === 'http:' ? 'http' : 'https');
  }

  /** userAgent is the User-Agent header sent. */
  get userAgent(): string {
    return this.options.userAgent;
  }

  /** timeouts are the HTTP timeouts used by this transport. */
  get timeouts(): HttpTimeouts | undefined {
    return this.options.timeouts;
  }

  /**
   * send sends one request with the right Authorization header and runs the 401 flow (learn the challenge, resolve
   * credentials lazily, renew tokens, ask once more when refused). Any other status is returned, body unread.
   */
  async send(opts: SendOptions): Promise<HttpResponse> {
    const { base, settings } = await this.endpoint();
    const url = await this.url(opts.url);
    const method = opts.method.toUpperCase();
    // Credentials belong to the registry's scheme, host and port; anything else is reached without them.
    if (url.origin !== base.origin) return this.sendElsewhere(url, base, method, opts);
    const attempt = newAuthAttempt();
    for (let round = 0; ; round++) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      let authorization: string | undefined;
      try {
        authorization = await this.auth.authorization(opts.scopes, attempt, opts.signal);
      } catch (e) {
        if (!(e instanceof TokenRefusedError)) throw e;
        const decision = await this.auth.credentialRefused(e, attempt, { signal: opts.signal, reresolve: opts.reresolve });
        if (!decision.retry) throw decision.error;
        if (round + 1 >= MAX_AUTH_ROUNDS) throw e;
        continue;
      }
      const headers: Record<string, string> = { 'user-agent': this.options.userAgent, ...opts.headers };
      if (authorization !== undefined) headers['authorization'] = authorization;
      const send = (): Promise<HttpResponse> =>
        request({ method, url, settings, headers, body: opts.body?.(), signal: opts.signal, timeouts: opts.timeouts ?? this.options.timeouts });
      const res = this.options.limiter ? await this.options.limiter.run(send, opts.signal) : await send();
      if (res.status !== 401) return res;
      const text = method === 'HEAD' ? '' : await res.text(ERROR_BODY_LIMIT);
      if (method === 'HEAD') await res.discard();
      const registryCode = parseErrorBody(text)[0]?.code;
      this.events({ type: 'debug', message: `${method} ${url.pathname}: 401${registryCode ? ` ${registryCode}` : ''} from ${this.host}, authenticating` });
      const decision = await this.auth.unauthorized(
        res.headers['www-authenticate'],
        opts.scopes,
        attempt,
        { status: 401, registryCode, method, url },
        { signal: opts.signal, reresolve: opts.reresolve },
      );
      if (!decision.retry) throw decision.error;
      if (round + 1 >= MAX_AUTH_ROUNDS) throw this.auth.refusedError({ status: 401, registryCode, method, url });
      if (opts.body !== undefined && opts.replayable === false) throw new ReplayNeededError(method, url.toString());
    }
  }

  /**
   * sendElsewhere sends a request to a URL the registry handed back that is not on its own origin (an upload
   * `Location` or a `Link` naming another host, port or scheme), as docker and containerd do: without any
   * Authorization header, with the TLS and proxy settings of the host actually contacted. An https registry that
   * hands back plain http on its own host name is refused: sending there would downgrade the upload, and it means a
   * TLS-terminating proxy in front of the registry is misconfigured. A 401 from the other origin is an AUTH error
   * that says why no credentials were sent.
   */
  private async sendElsewhere(url: URL, base: URL, method: string, opts: SendOptions): Promise<HttpResponse> {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new HandedUrlError(`${this.host} handed back a URL that is not http(s) (${redactUrl(url)}); refusing to follow it`, {
        method,
        url: redactUrl(url),
      });
    }
    if (base.protocol === 'https:' && url.protocol === 'http:' && url.hostname === base.hostname) {
      throw new HandedUrlError(
        `${this.host} is reached over https but handed back a plain-http URL on its own host (${redactUrl(url)}); nothing is sent there`,
        {
          method,
          url: redactUrl(url),
          hint: 'a TLS-terminating proxy in front of the registry does not send X-Forwarded-Proto: https (or the registry\'s http.host says http://); fix that configuration',
        },
      );
    }
    if (!this.elsewhere.has(url.origin)) {
      this.elsewhere.add(url.origin);
      this.events({ type: 'debug', message: `${this.host} handed back a URL on ${url.protocol}//${url.host}: sent there without the registry's credentials` });
    }
    const settings = await this.settingsFor(url);
    const res = await request({
      method,
      url,
      settings,
      headers: { 'user-agent': this.options.userAgent, ...opts.headers },
      body: opts.body?.(),
      signal: opts.signal,
      timeouts: opts.timeouts ?? this.options.timeouts,
    });
    if (res.status !== 401) return res;
    await res.discard();
    throw new MirrorError('AUTH', `${url.host}, named by ${this.host} in a Location or Link, asks for credentials; credentials for ${this.host} are never sent to another host`, {
      phase: 'auth',
      method,
      url: redactUrl(url),
      status: 401,
      hint: `the registry's configured address (http.host, or a proxy's Host / X-Forwarded-* headers) differs from ${base.protocol}//${this.host}: reach it by that address, or fix the configuration`,
    });
  }

  /**
   * call sends an idempotent request with retries (408/429/5xx, resets, timeouts) and hands the response to
   * `handle`; a status outside `ok` becomes a registry error (thrown, retried when retryable).
   */
  async call<T>(
    opts: SendOptions & { ok: readonly number[]; context: RegistryErrorContext },
    handle: (res: HttpResponse) => Promise<T>,
  ): Promise<T> {
    const url = await this.url(opts.url);
    return withRetry(
      async () => {
        const res = await this.send({ ...opts, url });
        if (!opts.ok.includes(res.status)) throw await registryError(res, opts.method.toUpperCase(), opts.context);
        return handle(res);
      },
      { method: opts.method.toUpperCase(), url, retry: this.retry, events: this.events, signal: opts.signal },
    );
  }
}

/** endpointHost maps a registry name to the host that serves its API (`docker.io` is served by `registry-1.docker.io`). */
export function endpointHost(host: string): string {
  return host === 'docker.io' || host === 'index.docker.io' ? 'registry-1.docker.io' : host;
}
