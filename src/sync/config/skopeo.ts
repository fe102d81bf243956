/**
 * skopeo's sync YAML, read unchanged: per source registry, `images` (repository -> tags or digests; an empty list
 * means every tag), `images-by-tag-regex` (repository -> regular expression, matched anywhere in the tag, as Go's
 * MatchString does), `images-by-semver` (repository -> version range), `credentials` {username, password},
 * `tls-verify`, `cert-dir`. Keys skopeo does not know are warnings, as skopeo ignores them.
 */
import { statSync } from 'node:fs';
import { registerCredentialSecrets } from '../../auth/secrets.js';
import { parseReference } from '../../reference/reference.js';
import { parseVersionRange } from '../semver.js';
import { checkDigest, checkHost, checkRegex, checkTagOrDigest, checkVersionRange, compileRegex } from './checks.js';
import type { RegistryConfig, SyncEntry } from './model.js';
import { keyPath as join, parseYaml, shorten, type Shape } from './shape.js';

/** checkRegistryKey is a check for a registry key: `HOST[:PORT]`, optionally followed by a path. */
function checkRegistryKey(key: string): string | undefined {
  const slash = key.indexOf('/');
  return checkHost(slash < 0 ? key : key.slice(0, slash));
}

/** SKOPEO_SHAPE is the shape of skopeo's sync YAML. */
export const SKOPEO_SHAPE: Shape = {
  type: 'map',
  description: "skopeo sync's YAML source file: source registries and the images to copy from each",
  keys: { description: 'a source registry: HOST[:PORT]', check: checkRegistryKey },
  values: {
    type: 'object',
    unknown: 'warn',
    description: 'one source registry',
    properties: {
      images: {
        type: 'map',
        nullable: true,
        description: 'repository -> tags or digests to copy (an empty list: every tag)',
        keys: { description: 'a repository path' },
        values: { type: 'array', nullable: true, items: { type: 'string', description: 'a tag or a digest', check: checkTagOrDigest } },
      },
      'images-by-tag-regex': {
        type: 'map',
        nullable: true,
        description: 'repository -> regular expression its tags must match',
        keys: { description: 'a repository path' },
        values: { type: 'string', description: 'a regular expression', check: checkRegex },
      },
      'images-by-semver': {
        type: 'map',
        nullable: true,
        description: 'repository -> version range its tags must be in',
        keys: { description: 'a repository path' },
        values: { type: 'string', description: 'a version range, e.g. ">=1.2, <2"', check: checkVersionRange },
      },
      credentials: {
        type: 'object',
        nullable: true,
        description: 'username and password for this registry',
        properties: { username: { type: 'string', nullable: true }, password: { type: 'string', nullable: true } },
      },
      'tls-verify': { type: 'boolean', description: 'verify TLS certificates (false also accepts plain HTTP); default true' },
      'cert-dir': { type: 'string', nullable: true, description: 'directory with *.crt, *.cert, *.key for this registry' },
    },
  },
};

type Raw = Record<string, Record<string, unknown> | undefined>;

/** isDirectory tells whether a path is a directory. */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** parseSkopeoYaml reads skopeo's sync YAML into registries and entries. */
export function parseSkopeoYaml(text: string, file: string): { registries: Map<string, RegistryConfig>; entries: SyncEntry[]; warnings: string[] } {
  // What skopeo cannot use (a bad key, repository, tag or pattern) it skips with a message and syncs the rest: so here.
  // A key given twice: skopeo 1.x (go-yaml v2) takes the last one without a word; here the earlier one is named.
  const located = parseYaml(text, file, SKOPEO_SHAPE, { skipInvalid: true, duplicateKeys: 'last' });
  const raw = (located.value ?? {}) as Raw;
  const registries = new Map<string, RegistryConfig>();
  const entries: SyncEntry[] = [];
  const warnings = located.warnings.map((w) => `${file}:${w.line}:${w.column}: ${w.path}: ${w.message} (skopeo ${w.skipped ? 'skips it' : 'ignores it'} too)`);
  const where = (path: string): string => located.positions.get(path) ?? file;
  /** skip leaves out an entry skopeo would skip, saying why. */
  const skip = (path: string, message: string): void => {
    warnings.push(`${where(path)}: ${path}: ${message} (skopeo skips it too)`);
  };
  for (const [key, cfg] of Object.entries(raw)) {
    const slash = key.indexOf('/');
    const host = (slash < 0 ? key : key.slice(0, slash)).toLowerCase();
    const base = slash < 0 ? '' : key.slice(slash + 1).replace(/\/+$/, '');
    const keyPath = join('', key);
    const c = cfg ?? {};
    const creds = c['credentials'] as { username?: string; password?: string } | undefined;
    const reg: RegistryConfig = { host, origin: where(keyPath) };
    if (creds && (creds.username || creds.password)) {
      reg.credentials = { kind: 'inline', username: creds.username ?? '', password: creds.password ?? '' };
      // Masked from the moment it is read: a message about this very file never prints it.
      registerCredentialSecrets({ kind: 'basic', username: reg.credentials.username, password: reg.credentials.password });
    }
    const tlsVerify = c['tls-verify'] as boolean | undefined;
    let certDir = c['cert-dir'] as string | undefined;
    if (certDir && !isDirectory(certDir)) {
      // skopeo reads what a cert-dir holds and takes a missing one for an empty one.
      warnings.push(`${where(keyPath)}: ${join(keyPath, 'cert-dir')}: ${certDir} is not a directory: no certificates from it (skopeo ignores it too)`);
      certDir = undefined;
    }
    // skopeo always uses the file's cert-dir for its registry (an absent one means none), and tls-verify when written.
    reg.tls = { certDir: certDir || undefined, verify: tlsVerify };
    // Each key keeps its own settings, as skopeo gives each its own context: two keys on one host may differ.
    const settings = base ? `${host}/${base}` : host;
    registries.set(settings, reg);
    const repoOf = (name: string, path: string): { registry: string; repository: string } | undefined => {
      try {
        const ref = parseReference(`${host}/${base ? `${base}/` : ''}${name}`, { defaultTag: false });
        if (ref.tag !== undefined || ref.digest !== undefined) {
          skip(path, `"${shorten(name)}" names an image, not a repository: list its tags under it`);
          return undefined;
        }
        return { registry: ref.registry, repository: ref.repository };
      } catch (e) {
        skip(path, `"${shorten(name)}" is not a repository name: ${(e as Error).message.replace(/^invalid image reference "[^"]*": /, '')}`);
        return undefined;
      }
    };
    const images = (c['images'] ?? {}) as Record<string, string[] | undefined>;
    for (const [name, refs] of Object.entries(images)) {
      const path = join(join(keyPath, 'images'), name);
      const repo = repoOf(name, path);
      if (repo === undefined) continue;
      const list = (refs ?? []).filter((r): r is string => typeof r === 'string');
      // Every tag it lists was skipped: nothing of it is synced (an empty list would mean every tag).
      if (list.length === 0 && (refs ?? []).length > 0) continue;
      const digests = list.filter((r) => checkDigest(r) === undefined);
      const tags = list.filter((r) => !digests.includes(r));
      entries.push({
        origin: where(path),
        label: `${repo.registry}/${repo.repository}`,
        registry: repo.registry,
        settings,
        kind: 'repository',
        path: repo.repository,
        tags: list.length === 0 ? undefined : tags,
        digests,
      });
    }
    const byRegex = (c['images-by-tag-regex'] ?? {}) as Record<string, string>;
    for (const [name, pattern] of Object.entries(byRegex)) {
      const path = join(join(keyPath, 'images-by-tag-regex'), name);
      const repo = repoOf(name, path);
      const regex = compileRegex(pattern);
      if (repo === undefined || typeof regex === 'string') continue;
      entries.push({
        origin: where(path),
        label: `${repo.registry}/${repo.repository} (tags matching ${pattern})`,
        registry: repo.registry,
        settings,
        kind: 'repository',
        path: repo.repository,
        rule: { include: [regex], exclude: [] },
        digests: [],
      });
    }
    const bySemver = (c['images-by-semver'] ?? {}) as Record<string, string>;
    for (const [name, text] of Object.entries(bySemver)) {
      const path = join(join(keyPath, 'images-by-semver'), name);
      const repo = repoOf(name, path);
      const range = parseVersionRange(text);
      if (repo === undefined || typeof range === 'string') continue;
      entries.push({
        origin: where(path),
        label: `${repo.registry}/${repo.repository} (versions ${text})`,
        registry: repo.registry,
        settings,
        kind: 'repository',
        path: repo.repository,
        rule: { include: [], exclude: [], semver: range },
        digests: [],
      });
    }
    if (Object.keys(images).length + Object.keys(byRegex).length + Object.keys(bySemver).length === 0) {
      warnings.push(`${where(keyPath)}: ${keyPath}: no images listed for this registry (skopeo skips it too)`);
    }
  }
  return { registries, entries, warnings };
}
