/**
 * A small token server for tests (distribution token spec): checks Basic credentials (or OAuth2 refresh tokens)
 * against its users, grants the requested scopes' actions (optionally restricted per user), and signs RS256 JWTs
 * whose `x5c` header carries the signing certificate the registry trusts via `rootcertbundle`. It keeps a log of
 * requests (scopes asked, grant types) for assertions, and never prints secrets.
 */
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSigningCert } from './certs.js';
import { listenLocal } from './proc.js';

/** DEFAULT_TOKEN_LIFETIME_S is the token lifetime when none is given. */
export const DEFAULT_TOKEN_LIFETIME_S = 300;
/** REGISTRY_LEEWAY_S is the clock-skew leeway distribution adds to `exp`; subtracted so tokens die when they say. */
export const REGISTRY_LEEWAY_S = 60;

/** TokenServerOptions configure the token server. */
export interface TokenServerOptions {
  /** user -> password accepted with Basic auth (GET) or the password grant (POST). */
  users: Record<string, string>;
  /** refresh token -> user, accepted by the OAuth2 POST (`grant_type=refresh_token`). */
  refreshTokens?: Record<string, string> | undefined;
  /** The `service` (JWT audience). Default: `mirror-test-registry`. */
  service?: string | undefined;
  /** The `iss` claim. Default: `mirror-test-token-server`. */
  issuer?: string | undefined;
  /** Token lifetime in seconds (what `expires_in` says and when the registry stops accepting it). Default: 300. */
  lifetimeSeconds?: number | undefined;
  /** Say this `expires_in` instead of the real lifetime (to test a token that dies before the client expects). */
  advertisedExpiresIn?: number | undefined;
  /** Which of the requested actions a user gets (user undefined = anonymous). Default: all for users, none for anonymous. */
  authorize?: ((user: string | undefined, repository: string, actions: string[]) => string[]) | undefined;
  /** Serve https with this certificate and key (PEM text). Default: http. */
  https?: { cert: string; key: string } | undefined;
}

/** TokenRequestLog is one request the token server saw (never a secret). */
export interface TokenRequestLog {
  method: string;
  /** `basic`, `anonymous`, `refresh_token`, `password`. */
  grant: string;
  /** The scopes asked for. */
  scopes: string[];
  /** The user authenticated, if any. */
  user?: string | undefined;
  /** The `account` parameter, if any. */
  account?: string | undefined;
  /** The `client_id` parameter (POST), if any. */
  clientId?: string | undefined;
  status: number;
}

/** TokenServer is a running token server. */
export interface TokenServer {
  /** The realm URL (`http://127.0.0.1:PORT/token`). */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file with the signing certificate, for the registry's `rootcertbundle`. */
  rootCertBundle: string;
  /** Requests seen so far. */
  log: TokenRequestLog[];
  /** Tokens issued so far. */
  issued(): number;
  stop(): Promise<void>;
}

/** b64url encodes bytes or text as base64url. */
function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** pemToDerBase64 gives the standard base64 of a PEM certificate's DER (for `x5c`). */
function pemToDerBase64(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

/** signJwt makes an RS256 JWT with an `x5c` header. */
function signJwt(claims: Record<string, unknown>, key: KeyObject, certDerB64: string): string {
  const header = { typ: 'JWT', alg: 'RS256', x5c: [certDerB64] };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(input), key);
  return `${input}.${b64url(signature)}`;
}

/** parseScope splits `repository:name:pull,push`. */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter((a) => a !== '') };
}

/** readBody reads a small request body. */
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    req.on('data', (b: Buffer) => {
      total += b.byteLength;
      if (total > 64 * 1024) req.destroy(new Error('too large'));
      else parts.push(b);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/** startTokenServer starts the token server on 127.0.0.1 with a free port. */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'mirror-token-'));
  const signer = await makeSigningCert(dir);
  const key = createPrivateKey(signer.key);
  const certDer = pemToDerBase64(signer.cert);
  const service = options.service ?? 'mirror-test-registry';
  const issuer = options.issuer ?? 'mirror-test-token-server';
  const lifetime = options.lifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_S;
  const authorize = options.authorize ?? ((user: string | undefined, _repo: string, actions: string[]) => (user === undefined ? [] : actions));
  const log: TokenRequestLog[] = [];
  let issued = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://token');
    const reply = (status: number, body: unknown, entry: Omit<TokenRequestLog, 'status'>): void => {
      log.push({ ...entry, status });
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    let user: string | undefined;
    let grant = 'anonymous';
    let scopes: string[] = [];
    let account: string | undefined;
    let clientId: string | undefined;
    let offline = false;
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      grant = form.get('grant_type') ?? '';
      scopes = (form.get('scope') ?? '').split(' ').filter((s) => s !== '');
      clientId = form.get('client_id') ?? undefined;
      offline = form.get('access_type') === 'offline';
      const entry = { method: 'POST', grant, scopes, clientId };
      if (grant === 'refresh_token') {
        const who = options.refreshTokens?.[form.get('refresh_token') ?? ''];
        if (who === undefined) return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid refresh token' }] }, entry);
        user = who;
      } else if (grant === 'password') {
        const name = form.get('username') ?? '';
        if (options.users[name] === undefined || options.users[name] !== form.get('password')) {
          return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] }, entry);
        }
        user = name;
      } else {
        return reply(400, { errors: [{ code: 'UNSUPPORTED', message: 'unsupported grant_type' }] }, entry);
      }
    } else if (req.method === 'GET') {
      scopes = url.searchParams.getAll('scope');
      account = url.searchParams.get('account') ?? undefined;
      const auth = req.headers.authorization;
      if (auth !== undefined) {
        grant = 'basic';
        const m = /^Basic\s+(.+)$/i.exec(auth);
        const decoded = m?.[1] !== undefined ? Buffer.from(m[1], 'base64').toString('utf8') : '';
        const colon = decoded.indexOf(':');
        const name = colon < 0 ? '' : decoded.slice(0, colon);
        const password = colon < 0 ? '' : decoded.slice(colon + 1);
        if (options.users[name] === undefined || options.users[name] !== password) {
          return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] }, { method: 'GET', grant, scopes, account });
        }
        user = name;
      }
    } else {
      res.writeHead(405).end();
      return;
    }
    const access: Array<{ type: string; name: string; actions: string[] }> = [];
    for (const s of scopes) {
      const parsed = parseScope(s);
      if (parsed === undefined) continue;
      // The catalog (registry:catalog:*) is for any authenticated user; repositories as `authorize` says.
      if (parsed.type === 'registry' && parsed.name === 'catalog') {
        if (user !== undefined) access.push({ type: parsed.type, name: parsed.name, actions: ['*'] });
        continue;
      }
      if (parsed.type !== 'repository') continue;
      const granted = authorize(user, parsed.name, parsed.actions).filter((a) => parsed.actions.includes(a));
      access.push({ type: parsed.type, name: parsed.name, actions: granted });
    }
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt(
      {
        iss: issuer,
        sub: user ?? '',
        aud: service,
        // distribution accepts a token REGISTRY_LEEWAY_S past its exp: take it off so the token dies when it says.
        exp: now + lifetime - REGISTRY_LEEWAY_S,
        nbf: now - 1,
        iat: now,
        jti: randomBytes(12).toString('hex'),
        access,
      },
      key,
      certDer,
    );
    issued++;
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: options.advertisedExpiresIn ?? lifetime,
      issued_at: new Date(now * 1000).toISOString(),
    };
    if (offline && user !== undefined) body['refresh_token'] = Object.entries(options.refreshTokens ?? {}).find(([, u]) => u === user)?.[0];
    reply(200, body, { method: req.method, grant, scopes, user, account, clientId });
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
  const server: Server = options.https !== undefined ? createHttpsServer({ cert: options.https.cert, key: options.https.key }, listener) : createHttpServer(listener);
  const port = await listenLocal(server);
  const scheme = options.https !== undefined ? 'https' : 'http';
  return {
    realm: `${scheme}://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: signer.certFile,
    log,
    issued: () => issued,
    async stop(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
