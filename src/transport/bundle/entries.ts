/**
 * One view of a bundle's entries whether it is a tar file (read as a stream, one entry after the other) or a
 * directory (any file at any time, so bodies can be reopened). Directory entries come metadata first.
 */
import { realpath, stat } from 'node:fs/promises';
import { openBundleInput, type BundleInput, type TarEntry } from '../../archive/index.js';
import type { BlobBody } from '../types.js';

/** BundleEntry is one file of a bundle. */
export interface BundleEntry {
  /** Normalized path inside the bundle. */
  name: string;
  size: number;
  /** For a link entry: the entry it points at. */
  linkTarget?: string | undefined;
  /** The body: one-time for a tar stream (read before the next entry), reopenable for a directory. */
  body(): BlobBody;
  /** bytes reads the whole body (at most `max` bytes). */
  bytes(max: number): Promise<Buffer>;
}

/** BundleEntriesInput is an opened bundle whose entries can be read, once per pass. */
export interface BundleEntriesInput {
  /** e.g. `xz, decoded by xz -dc -T0` or `directory`. */
  readonly description: string;
  /** True for a directory. */
  readonly reopenable: boolean;
  /** Names this input for local records: real path, size and modification time. */
  readonly identity: string;
  /** entries starts a pass from the beginning. */
  entries(options: { signal?: AbortSignal | undefined; onSourceBytes?: ((delta: number, total: number | undefined) => void) | undefined }): AsyncIterable<BundleEntry>;
  close(): Promise<void>;
}

/** openBundleEntries opens `--source` (a file or a directory). */
export async function openBundleEntries(
  path: string,
  options: { decoder?: 'auto' | 'xz' | 'lzma-native' | undefined; signal?: AbortSignal | undefined },
): Promise<BundleEntriesInput> {
  const input = await openBundleInput(path, { decoder: options.decoder ?? 'auto', links: 'yield', signal: options.signal });
  let identity = path;
  try {
    const st = await stat(path);
    identity = `${await realpath(path)}:${st.size}:${Math.round(st.mtimeMs)}`;
  } catch {
    /* keep the path */
  }
  return input.kind === 'file' ? fileEntries(input, identity) : directoryEntries(input, identity);
}

function fileEntries(input: Extract<BundleInput, { kind: 'file' }>, identity: string): BundleEntriesInput {
  return {
    identity,
    description: input.compression === 'none' ? 'tar' : `${input.compression}, decoded by ${input.decoder}`,
    reopenable: false,
    async *entries(options) {
      let last = 0;
      const report = (): void => {
        const now = input.compressedBytesRead();
        if (now > last) {
          options.onSourceBytes?.(now - last, input.totalBytes);
          last = now;
        }
      };
      for await (const e of input.entries({ signal: options.signal })) {
        report();
        yield tarEntry(e, options.onSourceBytes ? report : undefined);
      }
      report();
    },
    close: () => input.close(),
  };
}

function tarEntry(e: TarEntry, progress: (() => void) | undefined): BundleEntry {
  let opened = false;
  return {
    name: e.name,
    size: e.size,
    linkTarget: e.type === 'file' ? undefined : e.linkTarget,
    body: () => ({
      kind: 'stream',
      reopenable: false,
      open: () => {
        if (opened) return empty();
        opened = true;
        return progress && e.size > 1024 * 1024 ? reporting(e.body, progress) : e.body;
      },
    }),
    bytes: (max) => e.bytes(max),
  };
}

async function* empty(): AsyncGenerator<Uint8Array> {}

/** reporting passes a large body through, reporting read progress every few MiB. */
async function* reporting(body: AsyncIterable<Uint8Array>, progress: () => void): AsyncGenerator<Uint8Array> {
  let since = 0;
  for await (const chunk of body) {
    since += chunk.byteLength;
    if (since >= 4 * 1024 * 1024) {
      since = 0;
      progress();
    }
    yield chunk;
  }
}

const METADATA_FIRST = ['oci-layout', 'index.json', 'manifest.json', 'repositories'];
const SMALL = 4 * 1024 * 1024;

function directoryEntries(input: Extract<BundleInput, { kind: 'directory' }>, identity: string): BundleEntriesInput {
  return {
    identity,
    description: 'directory',
    reopenable: true,
    async *entries(options) {
      const names = await input.list();
      const sized = await Promise.all(names.map(async (name) => ({ name, size: (await input.stat(name)).size })));
      // Metadata first, then small files (manifests and configs), then the rest: every blob's images are known
      // before it is sent.
      const rank = (n: { name: string; size: number }): number => {
        const i = METADATA_FIRST.indexOf(n.name);
        return i >= 0 ? i : n.size <= SMALL ? 10 : 20;
      };
      sized.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
      for (const { name, size } of sized) {
        if (options.signal?.aborted) break;
        yield {
          name,
          size,
          body: () => ({ kind: 'stream', reopenable: true, open: () => input.open(name, { signal: options.signal }) }),
          bytes: (max) => input.readFile(name, max),
        };
      }
    },
    close: async () => {},
  };
}
