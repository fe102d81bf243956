/**
 * Where a source image lands. Two namings:
 * - skopeo's (`mirror sync --src yaml|docker ... DEST`): the source's reference `HOST/PATH:TAG` (or `@DIGEST`), only
 *   its last path element unless `--scoped`, joined under DEST, then `--append-suffix` appended (to the tag);
 * - push's (the native file): the source host dropped (or kept as `HOST_PORT` with `keepRegistryHost`), the path
 *   kept, rewritten by the first rule that matches (RKE2's `rewrite`), under the namespace.
 * Under a directory (`--dest dir`), skopeo's naming gives a path of directories, `REPOSITORY:TAG` its last.
 */
import { join } from 'node:path';
import { MirrorError } from '../errors/index.js';
import { registryPathComponent } from '../reference/destination.js';
import { isValidRepository, isValidTag } from '../reference/reference.js';
import { isSafeRelative } from '../transport/dir/tree.js';
import type { DestinationConfig, Naming } from './config/model.js';

/** SourceName is an image in a source registry. */
export interface SourceName {
  registry: string;
  repository: string;
  tag?: string | undefined;
  digest?: string | undefined;
}

/** DestinationName is where it lands. */
export interface DestinationName {
  repository: string;
  tag?: string | undefined;
  digest?: string | undefined;
  /** `HOST/REPOSITORY:TAG` or `HOST/REPOSITORY@DIGEST`; `dir:DEST/REPOSITORY:TAG` under a directory. */
  name: string;
  /** Under a directory (--dest dir): the image's directory below it, `REPOSITORY:TAG` or `REPOSITORY@DIGEST`. */
  path?: string | undefined;
}

/** formatSource writes a source name as skopeo's docker reference string does (`docker.io/library/busybox:1.36`). */
export function formatSource(s: SourceName): string {
  return `${s.registry}/${s.repository}${s.digest !== undefined ? `@${s.digest}` : s.tag !== undefined ? `:${s.tag}` : ''}`;
}

/** goReplacement turns Go's `${1}` in a replacement into JavaScript's `$1`. */
function goReplacement(text: string): string {
  return text.replace(/\$\{(\d+)\}/g, '$$$1');
}

/**
 * destinationRepository gives the destination repository of a source repository (the tag plays no part, so the
 * plan can shard and skip a repository before listing its tags). Throws BAD_INPUT naming both when the result is not
 * a repository path.
 */
export function destinationRepository(registry: string, repository: string, dest: DestinationConfig): string {
  const naming: Naming = dest.naming;
  let path: string;
  if (naming.kind === 'skopeo') {
    path = naming.scoped ? `${registry}/${repository}` : repository.slice(repository.lastIndexOf('/') + 1);
  } else {
    path = repository;
    if (naming.keepRegistryHost) {
      const host = registryPathComponent(registry);
      if (host === undefined) throw new MirrorError('BAD_INPUT', `registry host ${registry} cannot be kept in a repository path`, { image: `${registry}/${repository}` });
      path = `${host}/${path}`;
    }
    for (const rule of naming.rewrite) {
      const global = new RegExp(rule.match.source, rule.match.flags.includes('g') ? rule.match.flags : `${rule.match.flags}g`);
      if (global.test(path)) {
        global.lastIndex = 0;
        path = path.replace(global, goReplacement(rule.replace));
        break;
      }
    }
  }
  const full = dest.namespace === '' ? path : `${dest.namespace}/${path}`;
  // Under a directory (--dest dir) the path is one of directories, as skopeo writes it (a host's port kept).
  if (dest.dir !== undefined) {
    if (!isSafeRelative(full)) throw new MirrorError('BAD_INPUT', `${registry}/${repository} cannot be written under ${dest.dir} as ${full}`, { image: `${registry}/${repository}` });
    return full;
  }
  if (!isValidRepository(full)) {
    const why =
      naming.kind === 'skopeo' && naming.scoped && registry.includes(':')
        ? `--scoped keeps the source host ${registry}, and ':' is not allowed in a repository path (skopeo fails the same way); a native file with keepRegistryHost writes it as ${registryPathComponent(registry) ?? 'HOST_PORT'}`
        : 'not a valid repository path (lower-case letters, digits and separators only)';
    throw new MirrorError('BAD_INPUT', `${registry}/${repository} would land at ${dest.host}/${full}: ${why}`, { image: `${registry}/${repository}` });
  }
  return full;
}

/** destinationFor gives where one source image lands. */
export function destinationFor(source: SourceName, dest: DestinationConfig, repository = destinationRepository(source.registry, source.repository, dest)): DestinationName {
  const suffix = dest.naming.kind === 'skopeo' ? dest.naming.appendSuffix : '';
  if (source.digest !== undefined) {
    if (suffix !== '') {
      throw new MirrorError('BAD_INPUT', `--append-suffix cannot be added to ${formatSource(source)}: it is named by digest (skopeo fails the same way)`, { image: formatSource(source) });
    }
    return at(dest, { repository, digest: source.digest }, `${repository}@${source.digest}`);
  }
  const tag = source.tag === undefined ? undefined : `${source.tag}${suffix}`;
  if (tag !== undefined && !isValidTag(tag)) {
    throw new MirrorError('BAD_INPUT', `${formatSource(source)} would be tagged "${tag.slice(0, 140)}", which is not a valid tag`, { image: formatSource(source) });
  }
  return at(dest, { repository, tag }, `${repository}${tag !== undefined ? `:${tag}` : ''}`);
}

/** at completes a destination name: under a registry host, or (--dest dir) a directory of DEST. */
function at(dest: DestinationConfig, name: Omit<DestinationName, 'name' | 'path'>, path: string): DestinationName {
  if (dest.dir === undefined) return { ...name, name: `${dest.host}/${path}` };
  return { ...name, path, name: `dir:${join(dest.dir, ...path.split('/'))}` };
}
