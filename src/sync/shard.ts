/**
 * Sharding: `--shard I/N` keeps the destination repositories whose stable hash is I modulo N, so N runs (the pods of
 * a Kubernetes Indexed Job, where `--shards N` reads the index from JOB_COMPLETION_INDEX) cover the plan exactly
 * once and never write the same repository. The hash is FNV-1a (32 bits) of the repository's UTF-8 bytes: the same
 * on every machine and Node version.
 */
import { MirrorError } from '../errors/index.js';

/** Shard is one of N parts of a plan. */
export interface Shard {
  index: number;
  count: number;
}

/** MAX_SHARDS bounds N. */
export const MAX_SHARDS = 1000;

/** fnv1a is the 32-bit FNV-1a hash of a string's UTF-8 bytes. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** shardOf gives the shard index of a destination repository among `count`. */
export function shardOf(repository: string, count: number): number {
  return fnv1a(repository) % count;
}

/** inShard tells whether a destination repository belongs to a shard (always, without one). */
export function inShard(repository: string, shard: Shard | undefined): boolean {
  return shard === undefined || shard.count <= 1 || shardOf(repository, shard.count) === shard.index;
}

/** parseShard reads `--shard I/N` (0 <= I < N). */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || !(count >= 1 && count <= MAX_SHARDS) || !(index < count)) {
    throw new MirrorError('USAGE', `invalid --shard "${text.slice(0, 40)}": use I/N with 0 <= I < N <= ${MAX_SHARDS}, e.g. 0/4`);
  }
  return { index, count };
}

/** shardFromEnv reads `--shards N` with the index of a Kubernetes Indexed Job (JOB_COMPLETION_INDEX). */
export function shardFromEnv(count: number, env: NodeJS.ProcessEnv = process.env): Shard {
  const raw = env['JOB_COMPLETION_INDEX'];
  if (raw === undefined || raw === '') {
    throw new MirrorError('USAGE', '--shards needs JOB_COMPLETION_INDEX (set by a Kubernetes Job in Indexed completion mode); elsewhere use --shard I/N');
  }
  if (!/^\d+$/.test(raw)) throw new MirrorError('USAGE', `JOB_COMPLETION_INDEX "${raw.slice(0, 20)}" is not a number`);
  return parseShard(`${raw}/${count}`);
}
