/**
 * `mirror sync --src dir --dest docker SOURCE DEST`: the images of a directory tree, as skopeo sync reads one (the
 * import half of carrying images into an air gap: `skopeo sync --src docker --dest dir` wrote the tree, or
 * `skopeo copy ... dir:` wrote its images). Every directory under SOURCE that holds a `manifest.json` is one `dir:`
 * image (its own directories are not searched further; symbolic links are not followed). Its path under SOURCE names
 * it, as skopeo names it: `busybox:1.36` lands at `DEST/busybox:1.36`; with `--scoped` the whole relative path is
 * kept (`quay.io/team/app:1.0` at `DEST/quay.io/team/app:1.0`), else its last element; a name without a tag is
 * tagged `latest`; `--append-suffix` is added to the tag. SOURCE that is itself an image is named by its own name.
 *
 * Jobs stream as the tree is walked (directories in name order), so memory stays flat in the number of images.
 */
import { opendir, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { errorMessage, isMirrorError, MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { isValidDigest, isValidRepository, isValidTag } from '../reference/reference.js';
import { openDirSource } from '../transport/dir/source.js';
import type { SyncConfig, SyncEntry } from './config/model.js';
import type { PlanProblem, SyncJob } from './plan.js';
import { inShard, type Shard } from './shard.js';

/** MAX_TREE_DEPTH bounds how deep the tree is searched for images. */
export const MAX_TREE_DEPTH = 32;

/** DirTreeContext is what the walk needs. */
export interface DirTreeContext {
  config: SyncConfig;
  /** The SOURCE directory. */
  root: string;
  shard?: Shard | undefined;
  /** Called for an image that cannot be planned (a bad name, an unreadable manifest); the walk goes on. */
  onProblem(problem: PlanProblem): void;
  events: EventSink;
  signal?: AbortSignal | undefined;
}

/** splitName reads an image directory's name (`app:1.0`, `team/app@sha256:...`, `app`) as skopeo's docker reference does. */
export function splitName(name: string): { path: string; tag?: string | undefined; digest?: string | undefined } {
  const at = name.lastIndexOf('@');
  if (at > 0 && isValidDigest(name.slice(at + 1))) return { path: name.slice(0, at), digest: name.slice(at + 1) };
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) return { path: name.slice(0, colon), tag: name.slice(colon + 1) };
  return { path: name, tag: 'latest' };
}

/** Found is an image directory under the root (its path relative to it), or a directory that could not be read. */
type Found = { dir: string; rel: string; error?: undefined } | { dir: string; rel: string; error: unknown };

/** imageDirs gives every image directory under `root` (in name order), with its path relative to it. */
async function* imageDirs(root: string, signal: AbortSignal | undefined): AsyncGenerator<Found, void, undefined> {
  const relOf = (dir: string): string => relative(root, dir).split(sep).join('/');
  async function* walk(dir: string, depth: number): AsyncGenerator<Found, void, undefined> {
    if (signal?.aborted) return;
    const subdirs: string[] = [];
    let isImage = false;
    try {
      for await (const e of await opendir(dir)) {
        if (e.name === 'manifest.json' && e.isFile()) isImage = true;
        else if (e.isDirectory()) subdirs.push(e.name);
      }
    } catch (error) {
      yield { dir, rel: relOf(dir), error };
      return;
    }
    if (isImage) {
      yield { dir, rel: relOf(dir) };
      return;
    }
    if (depth >= MAX_TREE_DEPTH) return;
    for (const name of subdirs.sort()) yield* walk(join(dir, name), depth + 1);
  }
  yield* walk(root, 0);
}

/** dirTreeJobs streams the copy jobs of the images under `ctx.root`. */
export async function* dirTreeJobs(ctx: DirTreeContext): AsyncGenerator<SyncJob, void, undefined> {
  const { config, root } = ctx;
  const dest = config.destination;
  const naming = dest.naming.kind === 'skopeo' ? dest.naming : { scoped: false, appendSuffix: '' };
  try {
    if (!(await stat(root)).isDirectory()) throw new MirrorError('USAGE', `${root} is not a directory (--src dir reads a directory of dir: images)`, { file: root });
  } catch (e) {
    if (isMirrorError(e)) throw e;
    throw new MirrorError('USAGE', `cannot read the source directory ${root}: ${errorMessage(e)}`, { file: root, cause: e });
  }
  let images = 0;
  for await (const found of imageDirs(root, ctx.signal)) {
    const { dir, rel } = found;
    // SOURCE that is an image is named by its own name; skopeo keeps the last element unless --scoped.
    const named = rel === '' ? basename(root) : rel;
    const entry: SyncEntry = { origin: `dir:${dir}`, label: `dir:${dir}`, registry: '', kind: 'repository', path: named, digests: [] };
    const problem = (message: string, cause?: unknown): void => ctx.onProblem({ entry, error: isMirrorError(cause) ? cause : new MirrorError('BAD_INPUT', message, { file: dir, cause }) });
    if (found.error !== undefined) {
      problem(`cannot read ${dir}: ${errorMessage(found.error)}`, found.error);
      continue;
    }
    images++;
    const { path, tag, digest } = splitName(naming.scoped ? named : named.slice(named.lastIndexOf('/') + 1));
    const full = dest.namespace === '' ? path : `${dest.namespace}/${path}`;
    if (!isValidRepository(full)) {
      problem(`dir:${dir} would land at ${dest.host}/${full}: not a valid repository path (lower-case letters, digits and separators only)`);
      continue;
    }
    if (!inShard(full, ctx.shard)) continue;
    let destTag: string | undefined;
    if (digest !== undefined) {
      if (naming.appendSuffix !== '') {
        problem(`--append-suffix cannot be added to dir:${dir}: it is named by digest (skopeo fails the same way)`);
        continue;
      }
    } else {
      destTag = `${tag ?? 'latest'}${naming.appendSuffix}`;
      if (!isValidTag(destTag)) {
        problem(`dir:${dir} would be tagged "${destTag.slice(0, 140)}", which is not a valid tag`);
        continue;
      }
    }
    let source;
    try {
      source = await openDirSource(dir);
    } catch (e) {
      problem(errorMessage(e), e);
      continue;
    }
    yield {
      entry,
      sourceName: { registry: '', repository: named },
      source,
      // A dir: image is named by nothing but its path; a digest in its name is checked against what it holds.
      image: { repository: '', digest },
      name: `dir:${dir}`,
      destination: { repository: full, tag: destTag, name: `${dest.host}/${full}${destTag !== undefined ? `:${destTag}` : `@${digest}`}` },
    };
  }
  if (images === 0) ctx.events({ type: 'warning', message: `no dir: image under ${root} (a directory holding manifest.json is one)` });
}
