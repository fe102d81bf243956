/**
 * Reading a sync config: the native `mirror/v1` file (`--config FILE`), skopeo's sync YAML
 * (`--src yaml FILE DEST`), skopeo's `--src docker REPO[:TAG] DEST`, or `--src dir SOURCE DEST` (../dir-tree.ts walks
 * it); with `--dest dir`, DEST is a directory. Every mistake is a USAGE error (exit 2); file mistakes name
 * FILE:LINE:COLUMN.
 */
import { readFile } from 'node:fs/promises';
import { isMirrorError, MirrorError } from '../../errors/index.js';
import { parseTarget } from '../../reference/destination.js';
import { parseReference } from '../../reference/reference.js';
import type { DestinationConfig, RegistryConfig, SyncConfig } from './model.js';
import { isNativeYaml, parseNativeYaml } from './native.js';
import { parseSkopeoYaml } from './skopeo.js';

export * from './model.js';
export { ConfigError, formatIssue, type Issue } from './shape.js';
export { NATIVE_SHAPE, API_VERSION } from './native.js';
export { SKOPEO_SHAPE } from './skopeo.js';

/** MAX_CONFIG_BYTES bounds a config file. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** ConfigSource says where the sync config comes from. */
export type ConfigSource =
  /** `mirror sync --config FILE`. */
  | { kind: 'native'; file: string }
  /** `mirror sync --src yaml --dest docker FILE DEST`. */
  | { kind: 'skopeo-yaml'; file: string; destination: string; scoped: boolean; appendSuffix: string; destTransport?: 'docker' | 'dir' | undefined }
  /** `mirror sync --src docker --dest docker HOST/REPO[:TAG] DEST`. */
  | { kind: 'skopeo-docker'; repository: string; destination: string; scoped: boolean; appendSuffix: string; destTransport?: 'docker' | 'dir' | undefined }
  /** `mirror sync --src dir --dest docker SOURCE DEST`: every dir: image under SOURCE. */
  | { kind: 'skopeo-dir'; path: string; destination: string; scoped: boolean; appendSuffix: string; destTransport?: 'docker' | undefined };

async function readConfigFile(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MirrorError('USAGE', `cannot read the sync config ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (code ?? 'unreadable')}`, { file });
  }
  if (bytes.byteLength > MAX_CONFIG_BYTES) throw new MirrorError('USAGE', `the sync config ${file} is larger than ${MAX_CONFIG_BYTES} bytes`, { file });
  return bytes.toString('utf8');
}

/** skopeoDestination reads skopeo's DESTINATION argument (`HOST[:PORT][/NAMESPACE]`, or a directory with `--dest dir`). */
function skopeoDestination(text: string, scoped: boolean, appendSuffix: string, transport: 'docker' | 'dir'): DestinationConfig {
  if (transport === 'dir') {
    if (text === '') throw new MirrorError('USAGE', 'DESTINATION is empty: name the directory the images are written under');
    return { host: '', namespace: '', scheme: 'https', explicitScheme: false, naming: { kind: 'skopeo', scoped, appendSuffix }, dir: text };
  }
  let t;
  try {
    t = parseTarget(text);
  } catch (e) {
    // parseTarget speaks of push's flag; sync's destination is an argument.
    if (isMirrorError(e)) throw new MirrorError('USAGE', e.message.replace(/^invalid --private-registry/, 'invalid DESTINATION'), { hint: e.hint });
    throw e;
  }
  if (t.kind !== 'registry') throw new MirrorError('UNSUPPORTED', `sync writes to registries only (--dest docker), not ${text.slice(0, 60)}`);
  return { host: t.host, namespace: t.namespace, scheme: t.scheme, explicitScheme: t.explicitScheme, naming: { kind: 'skopeo', scoped, appendSuffix } };
}

/** loadSyncConfig reads and checks a sync config. */
export async function loadSyncConfig(source: ConfigSource): Promise<SyncConfig> {
  if (source.kind === 'native') {
    const text = await readConfigFile(source.file);
    if (!isNativeYaml(text)) {
      throw new MirrorError('USAGE', `${source.file} is not a mirror/v1 sync file (no "apiVersion: mirror/v1")`, {
        file: source.file,
        hint: `a skopeo sync file is read with: mirror sync --src yaml --dest docker ${source.file} DEST`,
      });
    }
    return parseNativeYaml(text, source.file);
  }
  const destination = skopeoDestination(source.destination, source.scoped, source.appendSuffix, source.destTransport ?? 'docker');
  if (source.kind === 'skopeo-yaml') {
    const text = await readConfigFile(source.file);
    if (isNativeYaml(text)) throw new MirrorError('USAGE', `${source.file} is a mirror/v1 sync file: run mirror sync --config ${source.file}`, { file: source.file });
    const { registries, entries, warnings } = parseSkopeoYaml(text, source.file);
    return { format: 'skopeo', file: source.file, defaults: {}, registries, destination, entries, warnings };
  }
  if (source.kind === 'skopeo-dir') {
    return { format: 'skopeo', file: source.path, defaults: {}, registries: new Map(), destination, entries: [], sourceDir: source.path, warnings: [] };
  }
  let ref;
  try {
    ref = parseReference(source.repository, { defaultTag: false });
  } catch (e) {
    throw new MirrorError('USAGE', `invalid source "${source.repository.slice(0, 80)}": ${(e as Error).message.replace(/^invalid image reference "[^"]*": /, '')}`);
  }
  const registries = new Map<string, RegistryConfig>();
  return {
    format: 'skopeo',
    file: source.repository,
    defaults: {},
    registries,
    destination,
    entries: [
      {
        origin: 'the command line',
        label: source.repository,
        registry: ref.registry,
        kind: 'repository',
        path: ref.repository,
        tags: ref.tag !== undefined ? [ref.tag] : ref.digest !== undefined ? [] : undefined,
        digests: ref.digest !== undefined ? [ref.digest] : [],
      },
    ],
    warnings: [],
  };
}
