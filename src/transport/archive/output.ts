/**
 * Where an archive destination writes: `FILE.tmp-<random>` beside FILE, renamed to FILE at commit (after an fsync),
 * removed on failure, on close without commit, at once when the run is aborted (Ctrl-C: before a second one can
 * kill the process), and when the process exits before any of these. Only a SIGKILL can leave the temporary file
 * behind; FILE itself never holds a partial archive.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { chmod, lstat, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { errorMessage, MirrorError } from '../../errors/index.js';
import { TarFileWriter } from './tar-writer.js';

/** Temporary files not yet renamed or removed, removed by the process `exit` handler. */
const pending = new Set<string>();
let exitHandler: (() => void) | undefined;

function track(path: string): void {
  pending.add(path);
  if (exitHandler === undefined) {
    exitHandler = () => {
      for (const p of pending) rmSync(p, { force: true });
      pending.clear();
    };
    process.on('exit', exitHandler);
  }
}

function untrack(path: string): void {
  pending.delete(path);
  if (pending.size === 0 && exitHandler !== undefined) {
    process.removeListener('exit', exitHandler);
    exitHandler = undefined;
  }
}

/** CheckArchivePathOptions tune {@link checkArchivePath}. */
export interface CheckArchivePathOptions {
  /** The transport, for messages (`docker-archive`). */
  transport: string;
  /** Refuse a FILE that exists and is not empty (skopeo's docker-archive rule). Default: false (it is replaced at commit). */
  refuseExisting?: boolean | undefined;
}

/**
 * checkArchivePath checks, before anything is read, that an archive can be written at `file`: its directory exists,
 * and FILE is not a directory or anything but a regular file (a pipe or device cannot be renamed onto).
 */
export async function checkArchivePath(file: string, options: CheckArchivePathOptions): Promise<void> {
  const dir = dirname(resolve(file));
  const where = `${options.transport}:${file}`;
  try {
    const d = await stat(dir);
    if (!d.isDirectory()) throw new MirrorError('BAD_INPUT', `cannot write ${where}: ${dirname(file)} is not a directory`, { file });
  } catch (e) {
    if (e instanceof MirrorError) throw e;
    throw new MirrorError('BAD_INPUT', `cannot write ${where}: the directory ${dirname(file)} does not exist`, { file, cause: e });
  }
  let existing;
  try {
    existing = await stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new MirrorError('BAD_INPUT', `cannot write ${where}: ${errorMessage(e)}`, { file, cause: e });
  }
  if (existing.isDirectory()) throw new MirrorError('BAD_INPUT', `cannot write ${where}: it is a directory`, { file, hint: `for a layout directory use oci:${file}` });
  if (!existing.isFile()) throw new MirrorError('BAD_INPUT', `cannot write ${where}: it is not a regular file (archives are written beside it and renamed into place)`, { file });
  if (options.refuseExisting && existing.size > 0) {
    throw new MirrorError('BAD_INPUT', `${where} already exists; ${options.transport} does not add to an existing archive`, {
      file,
      hint: 'remove it or choose another file name',
    });
  }
}

/** ArchiveOutput is an archive being written into a temporary file, renamed into place at commit. */
export class ArchiveOutput {
  private done = false;

  private constructor(
    /** The tar being written. */
    readonly tar: TarFileWriter,
    /** The final path. */
    readonly file: string,
    /** Where the archive goes: FILE, or the file a symbolic link at FILE names. */
    private readonly target: string,
    /** The mode of the file replaced, kept (a private archive stays private); undefined for a new file. */
    private readonly mode: number | undefined,
  ) {}

  /**
   * create starts `FILE.tmp-<random>` beside `file`, or beside the existing file a symbolic link at FILE names (the
   * link is written through and stays a link, as skopeo writes through it).
   */
  static async create(file: string, transport: string): Promise<ArchiveOutput> {
    // A link to a file that exists is written through; a dangling one is replaced, never followed to create a file
    // wherever it points.
    const link = await lstat(file).catch(() => undefined);
    const target = link?.isSymbolicLink() ? await realpath(file).catch(() => file) : file;
    const mode = (await stat(target).catch(() => undefined))?.mode;
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    let tar: TarFileWriter;
    try {
      tar = await TarFileWriter.create(tmp);
    } catch (e) {
      throw new MirrorError('BAD_INPUT', `cannot write ${transport}:${file}: ${errorMessage(e)}`, { file, cause: e });
    }
    track(tmp);
    return new ArchiveOutput(tar, file, target, mode === undefined ? undefined : mode & 0o7777);
  }

  /** The temporary file's name, for messages and tests. */
  get tempName(): string {
    return basename(this.tar.path);
  }

  /** commit ends the archive, syncs it and renames it to FILE (replacing a file there). */
  async commit(): Promise<void> {
    if (this.done) throw new MirrorError('INTERNAL', `${this.file} was already committed or discarded`);
    try {
      await this.tar.finish();
      if (this.mode !== undefined) await chmod(this.tar.path, this.mode);
      await rename(this.tar.path, this.target);
      this.done = true;
      untrack(this.tar.path);
    } catch (e) {
      await this.discard();
      if (e instanceof MirrorError) throw e;
      throw new MirrorError('BAD_INPUT', `cannot write ${this.file}: ${errorMessage(e)}`, { file: this.file, cause: e });
    }
  }

  /**
   * discardNow removes the temporary file at once, synchronously (from an abort listener, so a second Ctrl-C that
   * kills the process a moment later finds nothing left); the file handle is closed in the background.
   */
  discardNow(): void {
    if (this.done) return;
    this.done = true;
    rmSync(this.tar.path, { force: true });
    untrack(this.tar.path);
    void this.tar.abandon();
  }

  /** discard closes and removes the temporary file. Never throws; safe to call more than once. */
  async discard(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.tar.abandon();
    await rm(this.tar.path, { force: true }).catch(() => {});
    untrack(this.tar.path);
  }
}
