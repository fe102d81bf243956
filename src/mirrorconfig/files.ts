/**
 * The files a generator produces, and how they reach the disk: under `--output DIR` with the layout the node
 * expects, each written whole (temporary file, then rename) with its mode — 0600 for anything that holds a secret —
 * or one after the other on standard output.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Credential } from '../auth/types.js';
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import type { ConfigTarget, MirrorPlan } from './model.js';
import { commentBlock } from './text.js';

/** SECRET_MODE is the mode of a file holding credentials or a private key. */
export const SECRET_MODE = 0o600;
/** PUBLIC_MODE is the mode of every other file. */
export const PUBLIC_MODE = 0o644;

/** GeneratedFile is one file of a configuration. */
export interface GeneratedFile {
  /** Path under the output directory, `/`-separated (`certs.d/gcr.io/hosts.toml`). */
  readonly path: string;
  readonly content: string | Buffer;
  /** {@link SECRET_MODE} when it holds a credential or a private key, else {@link PUBLIC_MODE}. */
  readonly mode: number;
  /** A configuration (text, also written to standard output) or data only written under --output (certificate copies, credential files). */
  readonly kind: 'config' | 'data';
}

/** Layout says how the files will be delivered: into a directory, or on standard output. */
export type Layout = 'directory' | 'stream';

/** GenerateContext is what a generator gets. */
export interface GenerateContext {
  readonly target: ConfigTarget;
  readonly plan: MirrorPlan;
  readonly layout: Layout;
  /** The output directory (absolute), with the directory layout. */
  readonly outputDir?: string | undefined;
  /** Credentials per mirror host, for the targets that write them (only hosts a credential was found for). */
  readonly credentials: ReadonlyMap<string, Credential>;
  /** `--name`: the Secret's or the OpenShift objects' name. */
  readonly name?: string | undefined;
  /** `--namespace`: the Secret's namespace. */
  readonly namespace?: string | undefined;
  /** `--legacy-icsp`: OpenShift's ImageContentSourcePolicy instead of the mirror sets. */
  readonly legacyIcsp: boolean;
  readonly events: EventSink;
}

/**
 * header writes the comment every configuration file starts with: what made it, from what, that it is rewritten
 * rather than edited, then the file's own notes (what it does, how to install it).
 */
export function header(ctx: Pick<GenerateContext, 'target' | 'plan'>, path: string, notes: readonly string[]): string {
  return commentBlock([
    `${path}: written by \`mirror config ${ctx.target}\` from ${ctx.plan.origin}. Run the command again instead of editing it: the same input gives the same bytes.`,
    ...notes,
  ]);
}

/** safeJoin joins a generated path under the output directory, refusing anything that would leave it. */
function safeJoin(dir: string, path: string): string {
  const full = resolve(dir, ...path.split('/'));
  const rel = relative(dir, full);
  if (rel === '' || rel.startsWith('..') || rel.split(sep).includes('..')) {
    throw new MirrorError('INTERNAL', `generated path ${path} leaves the output directory`);
  }
  return full;
}

/** checkNoSymlinks refuses to write through a symbolic link between the output directory and the file. */
async function checkNoSymlinks(dir: string, full: string): Promise<void> {
  let p = dirname(full);
  const parts: string[] = [];
  while (p.length > dir.length) {
    parts.push(p);
    p = dirname(p);
  }
  for (const part of [...parts.reverse(), full]) {
    try {
      const s = await lstat(part);
      if (s.isSymbolicLink()) {
        throw new MirrorError('BAD_INPUT', `${part} is a symbolic link; mirror config writes only real files and directories under --output`, { file: part });
      }
    } catch (e) {
      if (e instanceof MirrorError) throw e;
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

/**
 * writeFiles writes the files under `dir` (created when missing): each one whole (a temporary file in the same
 * directory with the final mode, then a rename), never through a symbolic link, with its mode set even when the
 * file existed before. Gives the absolute paths written.
 */
export async function writeFiles(dir: string, files: readonly GeneratedFile[]): Promise<string[]> {
  const root = resolve(dir);
  const written: string[] = [];
  try {
    await mkdir(root, { recursive: true });
    for (const f of files) {
      const full = safeJoin(root, f.path);
      await checkNoSymlinks(root, full);
      await mkdir(dirname(full), { recursive: true });
      const tmp = join(dirname(full), `.${randomBytes(6).toString('hex')}.tmp`);
      try {
        await writeFile(tmp, f.content, { mode: f.mode, flag: 'wx' });
        await chmod(tmp, f.mode);
        await rename(tmp, full);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
      written.push(full);
    }
  } catch (e) {
    if (e instanceof MirrorError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new MirrorError('BAD_INPUT', `cannot write under ${dir}: ${err.code ?? err.message}${err.path ? ` (${err.path})` : ''}`, { file: dir, cause: e });
  }
  return written;
}

/** streamText joins the configuration files for standard output: YAML files as documents of one stream, others one after the other. */
export function streamText(files: readonly GeneratedFile[]): string {
  const texts = files.filter((f) => f.kind === 'config').map((f) => ({ path: f.path, text: String(f.content) }));
  const yaml = texts.length > 0 && texts.every((t) => /\.ya?ml$/.test(t.path));
  return texts.map((t) => t.text).join(yaml ? '---\n' : '\n');
}
