/**
 * The native sync file, `apiVersion: mirror/v1`, `kind: Sync`: defaults, per-registry connection settings
 * (credentials by reference only), the destination with push's mapping and rewrite rules, and the entries to sync.
 * `docs/sync.example.yaml` is a commented example; `docs/sync.schema.json` is written from {@link NATIVE_SHAPE}.
 */
import { isMirrorError } from '../../errors/index.js';
import { parseTarget } from '../../reference/destination.js';
import { parseReference } from '../../reference/reference.js';
import { parseVersionRange } from '../semver.js';
import {
  checkDigest,
  checkEnvName,
  checkHelperName,
  checkHost,
  checkPlatform,
  checkRegex,
  checkRepositoryPath,
  checkVersionRange,
  compileRegex,
  platformsOf,
} from './checks.js';
import type { CredentialRef, DestinationConfig, RegistryConfig, SyncConfig, SyncEntry, TagRule } from './model.js';
import { ConfigError, keyPath, parseYaml, shorten, type Issue, type Shape } from './shape.js';

/** API_VERSION is the version this reader knows. */
export const API_VERSION = 'mirror/v1';

const platforms: Shape = {
  type: 'array',
  description: 'platforms to copy out of multi-platform images (OS/ARCH[/VARIANT]); absent: the index whole, digest kept',
  items: { type: 'string', description: 'OS/ARCH[/VARIANT]', check: checkPlatform },
};

const regexList = (what: string): Shape => ({ type: 'array', description: what, items: { type: 'string', description: 'a regular expression', check: checkRegex } });

/** checkTarget is a check for the destination registry: `HOST[:PORT][/NAMESPACE]`, `https://...`, `http://...`. */
function checkTarget(text: string): string | undefined {
  try {
    const t = parseTarget(text);
    return t.kind === 'registry' ? undefined : 'the destination is a registry: HOST[:PORT][/NAMESPACE], https://... or http://...';
  } catch (e) {
    return isMirrorError(e) ? e.message.replace(/^invalid --private-registry/, 'invalid registry') : String(e);
  }
}

/** checkSource is a check for `HOST/PATH` naming a repository. */
function checkSource(text: string): string | undefined {
  try {
    const ref = parseReference(text, { defaultTag: false });
    if (ref.tag !== undefined || ref.digest !== undefined) return `"${shorten(text)}" names an image; name the repository and select tags with "tags" (digests with "digests")`;
    return undefined;
  } catch (e) {
    return isMirrorError(e) ? e.message.replace(/^invalid image reference/, 'invalid repository') : String(e);
  }
}

/** checkPrefix is a check for `HOST[/PATH]`. */
function checkPrefix(text: string): string | undefined {
  const trimmed = text.replace(/\/+$/, '');
  const slash = trimmed.indexOf('/');
  const host = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const bad = checkHost(host);
  if (bad !== undefined || !/[.:]|^localhost$/.test(host)) return `"${shorten(text)}" must start with the registry host (HOST[:PORT][/PATH])`;
  return slash < 0 ? undefined : checkRepositoryPath(trimmed.slice(slash + 1));
}

/** NATIVE_SHAPE is the shape of a `mirror/v1` sync file. */
export const NATIVE_SHAPE: Shape = {
  type: 'object',
  description: 'mirror sync configuration (mirror/v1)',
  required: ['apiVersion', 'kind', 'destination', 'sync'],
  properties: {
    apiVersion: { type: 'string', enum: [API_VERSION], description: `the version of this format: ${API_VERSION}` },
    kind: { type: 'string', enum: ['Sync'], description: 'Sync' },
    defaults: {
      type: 'object',
      description: 'defaults for every entry; command-line flags win',
      properties: {
        jobs: { type: 'integer', minimum: 1, maximum: 64, description: 'images copied at once (default 8)' },
        platforms,
        referrers: { type: 'boolean', description: 'copy signatures, SBOMs and attestations with their image (default true)' },
        retries: { type: 'integer', minimum: 0, maximum: 100, description: 'retries per request (default 5)' },
      },
    },
    registries: {
      type: 'map',
      description: 'how to reach each registry, source or destination, by host',
      keys: { description: 'HOST[:PORT]', check: checkHost },
      values: {
        type: 'object',
        description: 'one registry',
        properties: {
          credentials: {
            type: 'object',
            description: 'where the credential comes from (never the secret itself); absent: the usual chain (environment, Docker config, ...)',
            exactlyOne: ['env', 'file', 'dockerConfig', 'helper'],
            unknownHint: 'a credential is given by reference, never written here: env, file, dockerConfig or helper',
            properties: {
              env: {
                type: 'object',
                description: 'two environment variables',
                required: ['username', 'password'],
                properties: {
                  username: { type: 'string', description: 'the variable holding the username', check: checkEnvName },
                  password: { type: 'string', description: 'the variable holding the password', check: checkEnvName },
                },
              },
              file: { type: 'string', description: 'a file holding user:password, or a token' },
              dockerConfig: { type: 'string', description: 'a Docker config.json (auths, credHelpers, credsStore)' },
              helper: { type: 'string', description: 'a credential helper: NAME for docker-credential-NAME', check: checkHelperName },
            },
          },
          tls: {
            type: 'object',
            description: 'TLS for this registry',
            check: (v) => ((v['clientCert'] === undefined) !== (v['clientKey'] === undefined) ? 'clientCert and clientKey go together' : v['plainHttp'] === true && (v['ca'] !== undefined || v['clientCert'] !== undefined) ? 'plainHttp has no TLS: drop ca/clientCert/clientKey, or plainHttp' : undefined),
            properties: {
              ca: { type: 'string', description: 'CA certificate file (PEM), added to the system roots' },
              clientCert: { type: 'string', description: 'client certificate file (PEM)' },
              clientKey: { type: 'string', description: 'client private key file (PEM)' },
              insecure: { type: 'boolean', description: 'skip certificate checks (unsafe)' },
              plainHttp: { type: 'boolean', description: 'plain HTTP, no TLS' },
            },
          },
          requests: {
            type: 'object',
            description: 'bounds on requests to this registry',
            properties: {
              concurrency: { type: 'integer', minimum: 1, maximum: 256, description: 'requests waiting for an answer at once' },
              perSecond: { type: 'number', exclusiveMinimum: 0, maximum: 10000, description: 'requests started per second' },
            },
          },
        },
      },
    },
    destination: {
      type: 'object',
      description: "where images go, with push's mapping: the source host dropped, the path kept, under the namespace",
      required: ['registry'],
      properties: {
        registry: { type: 'string', description: 'HOST[:PORT][/NAMESPACE], https://... or http://...', check: checkTarget },
        namespace: { type: 'string', description: 'namespace prefix (or give it in registry)', check: checkRepositoryPath },
        keepRegistryHost: { type: 'boolean', description: 'keep the source host as the first path component (HOST_PORT)' },
        rewrite: {
          type: 'map',
          description: "RKE2's rewrite: regular expression -> replacement ($1...) for the path under the namespace; the first that matches applies",
          keys: { description: 'a regular expression', check: checkRegex },
          values: { type: 'string', description: 'the replacement' },
        },
      },
    },
    sync: {
      type: 'array',
      minItems: 1,
      description: 'what to sync',
      items: {
        type: 'object',
        description: 'one repository, or every repository under a prefix',
        exactlyOne: ['repository', 'prefix'],
        properties: {
          repository: { type: 'string', description: 'HOST/PATH of one repository', check: checkSource },
          prefix: { type: 'string', description: 'HOST[/PATH]: every repository under it (the registry must list its catalog)', check: checkPrefix },
          tags: {
            type: 'object',
            description: 'which tags (absent: every tag)',
            properties: {
              include: regexList('keep tags matching one of these'),
              exclude: regexList('drop tags matching one of these'),
              semver: { type: 'string', description: 'keep tags that are versions in this range', check: checkVersionRange },
              newest: { type: 'integer', minimum: 1, maximum: 100000, description: 'then keep the newest N' },
              newestBy: { type: 'string', enum: ['semver', 'created'], description: 'newest by version (default) or by the created time in the image config' },
            },
            check: (v) => (v['newestBy'] !== undefined && v['newest'] === undefined ? 'newestBy needs newest' : undefined),
          },
          digests: { type: 'array', description: 'digests always copied (by digest, no tag)', items: { type: 'string', description: 'sha256:...', check: checkDigest } },
          platforms,
          referrers: { type: 'boolean', description: 'copy referrers of these images' },
        },
      },
    },
  },
};

interface RawNative {
  defaults?: { jobs?: number; platforms?: string[]; referrers?: boolean; retries?: number };
  registries?: Record<string, RawRegistry | undefined>;
  destination: { registry: string; namespace?: string; keepRegistryHost?: boolean; rewrite?: Record<string, string> };
  sync: RawEntry[];
}

interface RawRegistry {
  credentials?: { env?: { username: string; password: string }; file?: string; dockerConfig?: string; helper?: string };
  tls?: { ca?: string; clientCert?: string; clientKey?: string; insecure?: boolean; plainHttp?: boolean };
  requests?: { concurrency?: number; perSecond?: number };
}

interface RawEntry {
  repository?: string;
  prefix?: string;
  tags?: { include?: string[]; exclude?: string[]; semver?: string; newest?: number; newestBy?: 'semver' | 'created' };
  digests?: string[];
  platforms?: string[];
  referrers?: boolean;
}

/** isNativeYaml tells whether a YAML text is a native file (it names `apiVersion: mirror/...`). */
export function isNativeYaml(text: string): boolean {
  return /^\uFEFF?apiVersion\s*:\s*["']?mirror\//m.test(text);
}

/** parseNativeYaml reads a `mirror/v1` sync file. */
export function parseNativeYaml(text: string, file: string): SyncConfig {
  const located = parseYaml(text, file, NATIVE_SHAPE);
  const raw = located.value as RawNative;
  const issues: Issue[] = [];
  const where = (path: string): string => located.positions.get(path) ?? file;
  const fail = (path: string, message: string): void => {
    const m = /:(\d+):(\d+)$/.exec(where(path));
    issues.push({ line: Number(m?.[1] ?? 1), column: Number(m?.[2] ?? 1), path, message });
  };

  const registries = new Map<string, RegistryConfig>();
  for (const [host, r] of Object.entries(raw.registries ?? {})) {
    const path = keyPath('registries', host);
    const reg: RegistryConfig = { host: host.toLowerCase(), origin: where(path) };
    const c = r?.credentials;
    let credentials: CredentialRef | undefined;
    if (c?.env) credentials = { kind: 'env', username: c.env.username, password: c.env.password };
    else if (c?.file !== undefined) credentials = { kind: 'file', path: c.file };
    else if (c?.dockerConfig !== undefined) credentials = { kind: 'docker-config', path: c.dockerConfig };
    else if (c?.helper !== undefined) credentials = { kind: 'helper', name: c.helper };
    reg.credentials = credentials;
    if (r?.tls) reg.tls = { ...r.tls };
    if (r?.requests) reg.requests = { ...r.requests };
    registries.set(reg.host, reg);
  }

  const target = parseTarget(raw.destination.registry);
  if (target.kind !== 'registry') throw new ConfigError(file, [{ line: 1, column: 1, path: 'destination.registry', message: 'not a registry' }]);
  if (target.namespace !== '' && raw.destination.namespace !== undefined) fail('destination', 'the namespace is given twice (in registry and in namespace): give it once');
  const rewrite: Array<{ match: RegExp; replace: string }> = [];
  for (const [pattern, replace] of Object.entries(raw.destination.rewrite ?? {})) {
    const match = compileRegex(pattern);
    if (typeof match !== 'string') rewrite.push({ match, replace });
  }
  const destination: DestinationConfig = {
    host: target.host,
    namespace: raw.destination.namespace ?? target.namespace,
    scheme: target.scheme,
    explicitScheme: target.explicitScheme,
    naming: { kind: 'push', keepRegistryHost: raw.destination.keepRegistryHost ?? false, rewrite },
  };

  const entries: SyncEntry[] = raw.sync.map((e, i) => {
    const path = `sync[${i}]`;
    let registry: string;
    let repoPath: string;
    if (e.repository !== undefined) {
      const ref = parseReference(e.repository, { defaultTag: false });
      registry = ref.registry;
      repoPath = ref.repository;
    } else {
      const trimmed = (e.prefix ?? '').replace(/\/+$/, '');
      const slash = trimmed.indexOf('/');
      registry = (slash < 0 ? trimmed : trimmed.slice(0, slash)).toLowerCase();
      repoPath = slash < 0 ? '' : trimmed.slice(slash + 1);
    }
    const t = e.tags;
    let rule: TagRule | undefined;
    if (t !== undefined) {
      const semver = t.semver === undefined ? undefined : parseVersionRange(t.semver);
      rule = {
        include: (t.include ?? []).map(compileRegex).filter((r): r is RegExp => typeof r !== 'string'),
        exclude: (t.exclude ?? []).map(compileRegex).filter((r): r is RegExp => typeof r !== 'string'),
        semver: typeof semver === 'string' ? undefined : semver,
        newest: t.newest === undefined ? undefined : { count: t.newest, by: t.newestBy ?? 'semver' },
      };
    }
    return {
      origin: where(path),
      label: e.repository ?? `${e.prefix ?? ''} (every repository under it)`,
      registry,
      kind: e.repository !== undefined ? 'repository' : 'prefix',
      path: repoPath,
      rule,
      digests: e.digests ?? [],
      platforms: platformsOf(e.platforms),
      referrers: e.referrers,
    };
  });
  if (issues.length > 0) throw new ConfigError(file, issues);
  const d = raw.defaults ?? {};
  return {
    format: 'native',
    file,
    defaults: { jobs: d.jobs, platforms: platformsOf(d.platforms), referrers: d.referrers, retries: d.retries },
    registries,
    destination,
    entries,
    warnings: located.warnings.map((w) => `${file}:${w.line}:${w.column}: ${w.path}: ${w.message}`),
  };
}
