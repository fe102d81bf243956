/**
 * The OS keychain (macOS Keychain, Windows Credential Vault, the Secret Service on Linux) through keytar.
 * keytar is optional and its upstream is archived: it is loaded lazily, once, and every failure — not installed,
 * no native build, no secret service answering — means "not available", never a crash or a hang.
 */
import { safeExcerpt } from '../errors/index.js';
import { TOKEN_USERNAME } from './cred-helper.js';
import type { Credential } from './types.js';

/** KEYCHAIN_SERVICE is the service name entries are stored under; the account is the registry host. */
export const KEYCHAIN_SERVICE = 'mirror';

/** DEFAULT_KEYCHAIN_TIMEOUT_MS bounds one keychain read, write or delete. */
export const DEFAULT_KEYCHAIN_TIMEOUT_MS = 5_000;

/** DEFAULT_KEYCHAIN_PROBE_TIMEOUT_MS bounds the check that a secret service answers. */
export const DEFAULT_KEYCHAIN_PROBE_TIMEOUT_MS = 2_000;

const PROBE_ACCOUNT = 'mirror-availability-probe';

/** KeytarLike is the part of keytar used here (lets tests inject a fake). */
export interface KeytarLike {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  deletePassword(service: string, account: string): Promise<boolean>;
}

/** KeychainOptions tune {@link createKeychain}. */
export interface KeychainOptions {
  /** Service name. Default: {@link KEYCHAIN_SERVICE}. */
  service?: string;
  /** Bound on get/store/delete, in ms. Default: {@link DEFAULT_KEYCHAIN_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Bound on the availability probe, in ms. Default: {@link DEFAULT_KEYCHAIN_PROBE_TIMEOUT_MS}. */
  probeTimeoutMs?: number;
  /** Loads keytar; undefined or a rejection means not available. Default: {@link loadKeytar}. */
  load?: () => Promise<KeytarLike | undefined>;
}

/** StoredCredential is the JSON kept as the keychain password: `{username, secret}` (`<token>` = identity token). */
export interface StoredCredential {
  username: string;
  secret: string;
}

/** Keychain stores registry credentials in the OS keychain, one entry per host. */
export interface Keychain {
  /** isAvailable tells whether keytar loads and a secret service answers (cached after the first answer). */
  isAvailable(): Promise<boolean>;
  /** unavailableReason says why the keychain is not available, once {@link Keychain.isAvailable} said so. */
  unavailableReason(): string | undefined;
  /** get reads the credential of a host; undefined when there is none or the keychain is not available. Never throws. */
  get(host: string): Promise<Credential | undefined>;
  /** store writes the credential of a host; throws (without the secret) when the keychain refuses. */
  store(host: string, credential: Credential): Promise<void>;
  /** delete removes the entry of a host; false when there was none or the keychain is not available. */
  delete(host: string): Promise<boolean>;
}

let keytarPromise: Promise<KeytarLike | undefined> | undefined;

function isKeytar(value: unknown): value is KeytarLike {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['getPassword'] === 'function' && typeof v['setPassword'] === 'function' && typeof v['deletePassword'] === 'function';
}

/** loadKeytar imports keytar once (dynamic import); undefined when it is missing or its native module does not load. */
export function loadKeytar(): Promise<KeytarLike | undefined> {
  keytarPromise ??= (async () => {
    try {
      const specifier = 'keytar';
      const mod: unknown = await import(specifier);
      const m = mod as { default?: unknown };
      if (isKeytar(m.default)) return m.default;
      if (isKeytar(mod)) return mod;
      return undefined;
    } catch {
      return undefined;
    }
  })();
  return keytarPromise;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** encodeStored turns a credential into the keychain's JSON; only basic and identity-token credentials are stored. */
export function encodeStored(credential: Credential): string {
  switch (credential.kind) {
    case 'basic':
      return JSON.stringify({ username: credential.username, secret: credential.password } satisfies StoredCredential);
    case 'identity-token':
      return JSON.stringify({ username: TOKEN_USERNAME, secret: credential.token } satisfies StoredCredential);
    default:
      throw new Error(`a ${credential.kind} credential is not stored in the keychain`);
  }
}

/** decodeStored reads the keychain's JSON; undefined when it is not what {@link encodeStored} writes. */
export function decodeStored(text: string): Credential | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const p = parsed as Record<string, unknown>;
  const username = p['username'];
  const secret = p['secret'];
  if (typeof username !== 'string' || typeof secret !== 'string' || secret === '') return undefined;
  if (username === TOKEN_USERNAME) return { kind: 'identity-token', token: secret };
  return { kind: 'basic', username, password: secret };
}

function reasonOf(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return safeExcerpt(text, 200) || 'unknown error';
}

/** createKeychain gives a {@link Keychain}; nothing is loaded until it is first used. */
export function createKeychain(options: KeychainOptions = {}): Keychain {
  const service = options.service ?? KEYCHAIN_SERVICE;
  const timeoutMs = options.timeoutMs ?? DEFAULT_KEYCHAIN_TIMEOUT_MS;
  const probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_KEYCHAIN_PROBE_TIMEOUT_MS;
  const load = options.load ?? loadKeytar;
  let availability: Promise<KeytarLike | undefined> | undefined;
  let reason: string | undefined;

  const keytar = async (): Promise<KeytarLike | undefined> => {
    try {
      return await load();
    } catch {
      return undefined;
    }
  };

  const probe = (): Promise<KeytarLike | undefined> => {
    availability ??= (async () => {
      const k = await keytar();
      if (!k) {
        reason = 'keytar is not installed or its native module does not load';
        return undefined;
      }
      try {
        await withTimeout(k.getPassword(service, PROBE_ACCOUNT), probeTimeoutMs, 'the secret service');
        return k;
      } catch (e) {
        reason = `no secret service answered (${reasonOf(e)})`;
        return undefined;
      }
    })();
    return availability;
  };

  return {
    isAvailable: async () => (await probe()) !== undefined,
    unavailableReason: () => reason,
    async get(host) {
      const k = await probe();
      if (!k) return undefined;
      try {
        const text = await withTimeout(k.getPassword(service, host), timeoutMs, 'the keychain');
        return text === null ? undefined : decodeStored(text);
      } catch {
        return undefined;
      }
    },
    async store(host, credential) {
      const k = await probe();
      if (!k) throw new Error(`the OS keychain is not available: ${reason ?? 'unknown reason'}`);
      const text = encodeStored(credential);
      try {
        await withTimeout(k.setPassword(service, host, text), timeoutMs, 'the keychain');
      } catch (e) {
        throw new Error(`the OS keychain refused to store the credential: ${reasonOf(e)}`);
      }
    },
    async delete(host) {
      const k = await probe();
      if (!k) return false;
      try {
        return await withTimeout(k.deletePassword(service, host), timeoutMs, 'the keychain');
      } catch {
        return false;
      }
    },
  };
}
