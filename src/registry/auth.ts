/**
 * Registry authentication: `WWW-Authenticate` challenges, Basic credentials, and bearer tokens fetched from the
 * token realm with exact scopes (GET with Basic auth, or the OAuth2 refresh-token POST), cached per scope and renewed
 * before they expire or when a request is answered 401. Credentials are asked for lazily and never printed.
 */
import { abortError, isMirrorError, MirrorError, redactUrl, registerSecret } from '../errors/index.js';
import { noEvents, type EventSink } from '../events/index.js';
import { request, type HttpTimeouts } from '../net/http.js';
import { isRetryableStatus, withRetry } from '../net/retry.js';
import type { HostSettingsResolver, RetryOptions } from '../net/types.js';
import type { Credential, CredentialResolver, ResolvedCredential } from '../auth/types.js';
import { parseErrorBody, registryErrorFromText, ERROR_BODY_LIMIT } from './errors.js';
import { parseJson } from '../oci/json.js';

/** DEFAULT_TOKEN_EXPIRES_IN_S is the token lifetime assumed when the token server gives none (distribution spec). */
export const DEFAULT_TOKEN_EXPIRES_IN_S = 60;
/** DEFAULT_TOKEN_MARGIN_MS is how long before its expiry a token is renewed (at most a quarter of its lifetime). */
export const DEFAULT_TOKEN_MARGIN_MS = 10_000;
/** OAUTH_CLIENT_ID is the `client_id` sent in the OAuth2 refresh-token flow. */
export const OAUTH_CLIENT_ID = 'mirror';
/** TOKEN_RESPONSE_LIMIT is the most bytes of a token response that are read. */
export const TOKEN_RESPONSE_LIMIT = 1024 * 1024;

/** Challenge is one parsed `WWW-Authenticate` challenge; the scheme and parameter names are lower case. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * parseWwwAuthenticate parses a `WWW-Authenticate` header (one or several challenges, comma separated; parameter
 * values as tokens or quoted strings that may contain commas and escaped quotes).
 */
export function parseWwwAuthenticate(header: string | undefined): Challenge[] {
  const out: Challenge[] = [];
  if (header === undefined) return out;
  const s = header;
  let i = 0;
  let current: Challenge | undefined;
  const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t';
  const isDelimiter = (c: string | undefined): boolean => c === undefined || c === ',' || c === '=' || c === '"' || isSpace(c);
  while (i < s.length) {
    while (i < s.length && (isSpace(s[i]) || s[i] === ',')) i++;
    if (i >= s.length) break;
    const start = i;
    while (i < s.length && !isDelimiter(s[i])) i++;
    const token = s.slice(start, i);
    if (token === '') {
      i++; // a stray quote or '='
      continue;
    }
    let j = i;
    while (j < s.length && isSpace(s[j])) j++;
    if (s[j] === '=') {
      j++;
      while (j < s.length && isSpace(s[j])) j++;
      let value = '';
      if (s[j] === '"') {
        j++;
        while (j < s.length && s[j] !== '"') {
          if (s[j] === '\\' && j + 1 < s.length) j++;
          value += s[j];
          j++;
        }
        j++; // closing quote
      } else {
        const vs = j;
        while (j < s.length && s[j] !== ',' && !isSpace(s[j])) j++;
        value = s.slice(vs, j);
      }
      // A parameter before any scheme is dropped.
      if (current !== undefined) current.params[token.toLowerCase()] = value;
      i = j;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** Scope is a repository and the actions wanted on it (`pull`, `push`). */
export interface Scope {
  /** The resource type: a repository (default), or `registry` for the catalog (`registry:catalog:*`). */
  type?: 'repository' | 'registry' | undefined;
  /** The repository name (or `catalog` for type `registry`). */
  repository: string;
  actions: readonly ('pull' | 'push' | 'delete' | '*')[];
}

/** scopeString renders a scope as the token spec does: `repository:<name>:pull,push`, `registry:catalog:*`. */
export function scopeString(scope: Scope): string {
  return `${scope.type ?? 'repository'}:${scope.repository}:${scope.actions.join(',')}`;
}

/** CATALOG_SCOPE is the scope for listing a registry's repositories. */
export const CATALOG_SCOPE: Scope = { type: 'registry', repository: 'catalog', actions: ['*'] };

/** pullScope is the scope for reading a repository. */
export function pullScope(repository: string): Scope {
  return { repository, actions: ['pull'] };
}

/** pushScope is the scope for writing a repository (`pull,push`). */
export function pushScope(repository: string): Scope {
  return { repository, actions: ['pull', 'push'] };
}

/** scopeKey is the cache key of a set of scopes (order-independent). */
export function scopeKey(scopes: readonly Scope[]): string {
  return scopes.map(scopeString).sort().join(' ');
}

/** CachedToken is a bearer token and when it stops being used. */
interface CachedToken {
  token: string;
  /** The scopes it was asked for. */
  scopes: readonly Scope[];
  /** Epoch ms after which the token is renewed before use. */
  renewAt: number;
  /** The credential generation it was fetched with. */
  generation: number;
}

/** AuthenticatorOptions configure an {@link Authenticator}. */
export interface AuthenticatorOptions {
  /** The registry `host[:port]` (what credentials are looked up by, and what messages name). */
  host: string;
  /** Where credentials come from; asked lazily, on the first 401. */
  credentials: CredentialResolver;
  /** TLS/proxy settings for the token realm host. */
  settings: HostSettingsResolver;
  /** Debug events (credential source used). Default: dropped. */
  events?: EventSink | undefined;
  /** Retries for token requests. */
  retry?: RetryOptions | undefined;
  /** Timeouts for token requests. */
  timeouts?: HttpTimeouts | undefined;
  /** Sent as User-Agent to the token server. */
  userAgent?: string | undefined;
  /** Renew tokens this long before they expire (capped at a quarter of the lifetime). Default: {@link DEFAULT_TOKEN_MARGIN_MS}. */
  tokenMarginMs?: number | undefined;
  /**
   * The scheme the registry itself is reached with: a plain-http token realm of a registry reached over verified
   * https is refused, or a warning when the realm is on this machine. Default: not checked.
   */
  registryScheme?: (() => Promise<'http' | 'https'>) | undefined;
}

/** isLoopbackHost tells whether a URL's hostname is this machine: `localhost`, 127.0.0.0/8, `[::1]`. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '[::1]' || h === '::1';
}

/** TokenRefusedError says the token server refused the credential (401/403). */
export class TokenRefusedError extends MirrorError {
  constructor(message: string, options: ConstructorParameters<typeof MirrorError>[2]) {
    super('AUTH', message, options);
    this.name = 'TokenRefusedError';
  }
}

/** UnauthorizedDecision is what to do after a 401: send again, or give up with an error. */
export type UnauthorizedDecision = { retry: true } | { retry: false; error: MirrorError };

/** AuthAttempt is the state of one logical request through the 401 flow. */
export interface AuthAttempt {
  /** The credential generation the last Authorization header was built from (-1: none sent). */
  generation: number;
  /** Whether the last header used a token fetched for this very request (a 401 then means "refused"). */
  fresh: boolean;
  /** Whether the credential was already asked again (`retry: true`) for this request. */
  reresolved: boolean;
}

/** newAuthAttempt starts the state of one logical request. */
export function newAuthAttempt(): AuthAttempt {
  return { generation: -1, fresh: false, reresolved: false };
}

/**
 * Authenticator keeps the auth state of one registry host: the challenge it answered with, the credential (resolved
 * once, lazily), and bearer tokens per scope.
 */
export class Authenticator {
  private readonly options: AuthenticatorOptions;
  private readonly events: EventSink;
  private challenge: Challenge | undefined;
  private credential: ResolvedCredential | undefined;
  private resolving: Promise<ResolvedCredential> | undefined;
  private generation = 0;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** Plain-http token realms already warned about. */
  private readonly warnedRealms = new Set<string>();

  constructor(options: AuthenticatorOptions) {
    this.options = options;
    this.events = options.events ?? noEvents;
  }

  /** The auth scheme the registry asked for (`basic`, `bearer`), or undefined before any 401. */
  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  /** The source of the credential in use (never the secret), or undefined before one was needed. */
  get credentialSource(): string | undefined {
    return this.credential?.source;
  }

  /** learnChallenge records the challenge of a 401 response; returns false when there is none usable. */
  learnChallenge(header: string | undefined): boolean {
    const challenges = parseWwwAuthenticate(header);
    const chosen = challenges.find((c) => c.scheme === 'bearer' && c.params['realm']) ?? challenges.find((c) => c.scheme === 'basic');
    if (chosen === undefined) return false;
    const prev = this.challenge;
    if (prev === undefined || prev.scheme !== chosen.scheme || prev.params['realm'] !== chosen.params['realm'] || prev.params['service'] !== chosen.params['service']) {
      this.tokens.clear();
    }
    this.challenge = { scheme: chosen.scheme, params: { ...chosen.params } };
    return true;
  }

  /**
   * authorization gives the Authorization header for a request needing `scopes`, fetching a token when the cached
   * one is missing or about to expire; undefined before the registry asked for auth. Records in `attempt` what it used.
   */
  async authorization(scopes: readonly Scope[], attempt: AuthAttempt, signal?: AbortSignal): Promise<string | undefined> {
    attempt.fresh = false;
    const challenge = this.challenge;
    const resolved = this.credential;
    if (challenge === undefined || resolved === undefined) {
      attempt.generation = -1;
      return undefined;
    }
    const generation = this.generation;
    attempt.generation = generation;
    const cred = resolved.credential;
    if (cred.kind === 'registry-token') return `Bearer ${cred.token}`;
    if (challenge.scheme === 'basic') {
      if (cred.kind === 'basic') return basicHeader(cred.username, cred.password);
      return undefined;
    }
    const key = scopeKey(scopes);
    const cached = this.cachedToken(key, scopes, generation);
    if (cached !== undefined) return `Bearer ${cached.token}`;
    const token = await this.fetchTokenShared(key, scopes, challenge, resolved, generation, signal);
    attempt.fresh = true;
    return `Bearer ${token.token}`;
  }

  /** cachedToken finds a live token for exactly these scopes, or one asked for a superset (pull,push covers pull). */
  private cachedToken(key: string, scopes: readonly Scope[], generation: number): CachedToken | undefined {
    const now = Date.now();
    const live = (t: CachedToken | undefined): t is CachedToken => t !== undefined && t.generation === generation && now < t.renewAt;
    const exact = this.tokens.get(key);
    if (live(exact)) return exact;
    for (const t of this.tokens.values()) {
      if (live(t) && covers(t.scopes, scopes)) return t;
    }
    return undefined;
  }

  /**
   * unauthorized decides what to do after a 401 answered a request: learn the challenge, resolve the credential on
   * first need, drop a stale token, ask the resolver again once (`retry: true`) when the credential was refused.
   */
  async unauthorized(
    wwwAuthenticate: string | undefined,
    scopes: readonly Scope[],
    attempt: AuthAttempt,
    failure: { status: number; registryCode?: string | undefined; method: string; url: URL },
    options: { signal?: AbortSignal | undefined; reresolve?: boolean | undefined } = {},
  ): Promise<UnauthorizedDecision> {
    if (!this.learnChallenge(wwwAuthenticate) && this.challenge === undefined) {
      return { retry: false, error: this.refusedError(failure) };
    }
    this.forget(scopes);
    if (this.credential === undefined) {
      await this.resolveCredential(false, options.signal);
      return { retry: true };
    }
    if (attempt.generation !== this.generation) return { retry: true }; // someone else already changed it
    if (attempt.generation === -1) return { retry: true };
    const cred = this.credential.credential;
    const refused = this.challenge?.scheme === 'basic' || attempt.fresh || cred.kind === 'registry-token';
    if (!refused) return { retry: true }; // a cached token went stale: fetch a new one
    if (!attempt.reresolved && options.reresolve !== false) {
      attempt.reresolved = true;
      await this.resolveCredential(true, options.signal);
      return { retry: true };
    }
    return { retry: false, error: this.refusedError(failure) };
  }

  /** forget drops the cached tokens that would be used for these scopes. */
  private forget(scopes: readonly Scope[]): void {
    this.tokens.delete(scopeKey(scopes));
    for (const [k, t] of this.tokens) if (covers(t.scopes, scopes)) this.tokens.delete(k);
  }

  /** credentialRefused handles a token server refusal: ask again once, else the AUTH error to throw. */
  async credentialRefused(
    error: TokenRefusedError,
    attempt: AuthAttempt,
    options: { signal?: AbortSignal | undefined; reresolve?: boolean | undefined } = {},
  ): Promise<UnauthorizedDecision> {
    if (attempt.generation !== this.generation) return { retry: true };
    if (!attempt.reresolved && options.reresolve !== false) {
      attempt.reresolved = true;
      await this.resolveCredential(true, options.signal);
      return { retry: true };
    }
    return { retry: false, error };
  }

  /** refusedError builds the AUTH error naming the credential source (never the secret). */
  refusedError(failure: { status: number; registryCode?: string | undefined; method: string; url: URL }, viaTokenServer = false): MirrorError {
    const source = this.credential?.source;
    const code = failure.registryCode ? ` ${failure.registryCode}` : failure.status === 401 ? ' UNAUTHORIZED' : failure.status === 403 ? ' DENIED' : '';
    const status = `HTTP ${failure.status}${code}`;
    const server = viaTokenServer ? ` (token server ${failure.url.host})` : '';
    const anonymous = source === undefined || this.credential?.credential.kind === 'anonymous';
    const message = anonymous
      ? `authentication to ${this.options.host} failed: no credentials were found${server} (${status})`
      : failure.status === 403 && !viaTokenServer
        ? `access denied by ${this.options.host} for credentials from ${source} (${status})`
        : `authentication to ${this.options.host} failed with credentials from ${source}${server} (${status})`;
    return new MirrorError('AUTH', message, {
      phase: 'auth',
      method: failure.method,
      url: redactUrl(failure.url),
      status: failure.status,
      registryCode: failure.registryCode,
      hint: anonymous
        ? `log in (mirror login ${this.options.host}) or pass --username and --password-stdin`
        : 'check the user name and password (or token) and the permissions on the repository',
    });
  }

  /** resolveCredential asks the resolver (once at a time) and starts a new credential generation. */
  private async resolveCredential(retry: boolean, signal: AbortSignal | undefined): Promise<ResolvedCredential> {
    if (this.resolving !== undefined) return this.resolving;
    const p = (async () => {
      let resolved: ResolvedCredential;
      try {
        resolved = await this.options.credentials.resolve(this.options.host, { signal, retry });
      } catch (e) {
        // Which registry the credential was for: a sync tells a source's refusal (its images fail) from the
        // destination's (the run stops) by it.
        if (isMirrorError(e) && e.context.registry === undefined) (e.context as { registry?: string }).registry = this.options.host;
        throw e;
      }
      this.credential = resolved;
      this.generation++;
      this.tokens.clear();
      this.events({
        type: 'debug',
        message: `${this.options.host}: using ${resolved.credential.kind} credentials from ${resolved.source}${retry ? ' (asked again after a refusal)' : ''}`,
      });
      return resolved;
    })();
    this.resolving = p;
    try {
      return await p;
    } finally {
      this.resolving = undefined;
    }
  }

  /** fetchTokenShared fetches a token for a scope set, sharing one request among concurrent callers. */
  private fetchTokenShared(
    key: string,
    scopes: readonly Scope[],
    challenge: Challenge,
    resolved: ResolvedCredential,
    generation: number,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const flightKey = `${generation} ${key}`;
    const existing = this.inflight.get(flightKey);
    if (existing !== undefined) return existing;
    const p = this.fetchToken(scopes, challenge, resolved.credential, generation, signal).then(
      (t) => {
        this.inflight.delete(flightKey);
        if (generation === this.generation) this.tokens.set(key, t);
        return t;
      },
      (e: unknown) => {
        this.inflight.delete(flightKey);
        // The token server may be another host: the failure still belongs to this registry (a sync tells its
        // sources' failures from the destination's by it).
        if (e instanceof MirrorError) e.context.registry ??= this.options.host;
        throw e;
      },
    );
    this.inflight.set(flightKey, p);
    return p;
  }

  /** fetchToken asks the realm for a token with exactly these scopes. */
  private async fetchToken(
    scopes: readonly Scope[],
    challenge: Challenge,
    cred: Credential,
    generation: number,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const realmText = challenge.params['realm'];
    if (realmText === undefined) throw new MirrorError('AUTH', `${this.options.host} asked for a bearer token without a realm`, { phase: 'auth' });
    let realm: URL;
    try {
      realm = new URL(realmText);
    } catch {
      throw new MirrorError('AUTH', `${this.options.host} named an invalid token realm`, { phase: 'auth' });
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
      throw new MirrorError('AUTH', `${this.options.host} named a token realm that is not http(s)`, { phase: 'auth' });
    }
    if (realm.protocol === 'http:' && cred.kind !== 'anonymous' && (await this.options.registryScheme?.()) === 'https') {
      // A registry reached over verified https that sends the credential to a plain-http realm on the network is a
      // downgrade nobody asked for: refused. One on this machine, or a registry whose TLS is not verified anyway, is
      // a warning (once).
      const verified = !(await this.options.settings.forHost(this.options.host, 'https')).tls.insecureSkipVerify;
      if (verified && !isLoopbackHost(realm.hostname)) {
        throw new MirrorError('AUTH', `${this.options.host} is reached over https but names a plain-http token realm (${realm.origin}): the credential is not sent there unencrypted`, {
          phase: 'auth',
          hint: 'configure an https token realm on the registry, or skip TLS verification for it (--insecure-skip-tls-verify, --src-tls-verify=false, --dest-tls-verify=false) to accept it',
        });
      }
      if (!this.warnedRealms.has(realm.origin)) {
        this.warnedRealms.add(realm.origin);
        this.events({
          type: 'warning',
          message: `${this.options.host} is reached over https but names a plain-http token realm (${realm.origin}): the credential for it is sent there unencrypted; configure an https realm`,
        });
      }
    }
    const service = challenge.params['service'];
    const scopeStrings = scopes.map(scopeString);
    const settings = await this.options.settings.forHost(realm.host, realm.protocol === 'http:' ? 'http' : 'https');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.userAgent) headers['user-agent'] = this.options.userAgent;
    let method = 'GET';
    let url = new URL(realm);
    let body: Uint8Array | undefined;
    if (cred.kind === 'identity-token') {
      method = 'POST';
      const form = new URLSearchParams();
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', cred.token);
      if (service !== undefined) form.set('service', service);
      if (scopeStrings.length > 0) form.set('scope', scopeStrings.join(' '));
      form.set('client_id', OAUTH_CLIENT_ID);
      body = Buffer.from(form.toString(), 'utf8');
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (service !== undefined) url.searchParams.set('service', service);
      for (const s of scopeStrings) url.searchParams.append('scope', s);
      if (cred.kind === 'basic') {
        url.searchParams.set('account', cred.username);
        headers['authorization'] = basicHeader(cred.username, cred.password);
      }
    }
    url = new URL(url.toString());
    this.events({
      type: 'debug',
      message: `${this.options.host}: token for ${scopeStrings.length > 0 ? scopeStrings.join(' ') : '(no scope)'} from ${realm.host} (${method}, ${cred.kind} credentials)`,
    });
    const issuedLocal = Date.now();
    const text = await withRetry(
      async () => {
        const res = await request({ method, url, settings, headers, body, signal, timeouts: this.options.timeouts });
        if (res.status === 200) {
          try {
            return await res.bytes(TOKEN_RESPONSE_LIMIT);
          } catch (e) {
            if (!(e instanceof MirrorError) || e.code !== 'BAD_INPUT') throw e;
            throw new MirrorError('AUTH', `token server ${realm.host} answered with more than ${TOKEN_RESPONSE_LIMIT / 1024 / 1024} MiB, where a token takes a few KB`, {
              phase: 'auth',
              url: redactUrl(url),
            });
          }
        }
        const errText = await res.text(ERROR_BODY_LIMIT);
        const registryCode = parseErrorBody(errText)[0]?.code;
        if (res.status === 401 || res.status === 403) {
          const refused = this.refusedError({ status: res.status, registryCode, method, url }, true);
          throw new TokenRefusedError(refused.message, {
            phase: 'auth',
            method,
            url: redactUrl(url),
            status: res.status,
            registryCode,
            hint: refused.hint,
          });
        }
        const err = registryErrorFromText(res.status, res.headers, errText, method, url, { phase: 'token', what: `from ${realm.host}` });
        if (!isRetryableStatus(res.status)) throw new MirrorError('AUTH', err.message, { ...err.context, cause: err });
        throw err;
      },
      { method, url, retry: this.options.retry, events: this.events, signal },
    );
    if (signal?.aborted) throw abortError(signal);
    let parsed: unknown;
    try {
      parsed = parseJson(text);
    } catch {
      throw new MirrorError('AUTH', `token server ${realm.host} answered something that is not JSON`, { phase: 'auth', url: redactUrl(url) });
    }
    const obj = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    const token = typeof obj['token'] === 'string' && obj['token'] !== '' ? obj['token'] : obj['access_token'];
    if (typeof token !== 'string' || token === '') {
      throw new MirrorError('AUTH', `token server ${realm.host} answered without a token`, { phase: 'auth', url: redactUrl(url) });
    }
    registerSecret(obj['token'], obj['access_token'], obj['refresh_token']);
    const expiresInRaw = obj['expires_in'];
    const expiresInS = typeof expiresInRaw === 'number' && expiresInRaw > 0 ? expiresInRaw : DEFAULT_TOKEN_EXPIRES_IN_S;
    const lifetimeMs = expiresInS * 1000;
    let issuedAt = issuedLocal;
    const issuedRaw = obj['issued_at'];
    if (typeof issuedRaw === 'string') {
      const t = Date.parse(issuedRaw);
      // Trust issued_at only when it is plausible against the local clock (it is in the past, within the lifetime).
      if (!Number.isNaN(t) && t <= Date.now() && t > Date.now() - lifetimeMs) issuedAt = Math.min(t, issuedLocal);
    }
    const margin = Math.min(this.options.tokenMarginMs ?? DEFAULT_TOKEN_MARGIN_MS, lifetimeMs / 4);
    return { token, scopes: [...scopes], renewAt: issuedAt + lifetimeMs - margin, generation };
  }
}

/** covers tells whether tokens asked for `have` were asked for every action of `need`. */
function covers(have: readonly Scope[], need: readonly Scope[]): boolean {
  return need.every((n) => {
    const h = have.find((s) => s.repository === n.repository && (s.type ?? 'repository') === (n.type ?? 'repository'));
    return h !== undefined && n.actions.every((a) => h.actions.includes(a) || h.actions.includes('*'));
  });
}

/** basicHeader builds a Basic Authorization header value. */
export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
