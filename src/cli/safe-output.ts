/**
 * What reaches the terminal goes through the one scrubber (src/errors/sanitize.ts): registered secrets and URL
 * credentials taken out, control characters escaped. The base command guards standard output as a whole (summaries,
 * `--json` documents, `--report -`: text only, never terminal control); standard error is written line by line by
 * the renderer and the error line, which pass their text through {@link safeLine} (the progress bar's own cursor
 * control must reach the terminal, so standard error is not guarded as a whole).
 */
import { safeText } from '../errors/sanitize.js';

/** safeLine makes one line of output fit to print (see `safeText`); a newline inside it is escaped. */
export function safeLine(text: string): string {
  return safeText(text);
}

/** safeBlock makes text of several lines (a stack trace) fit to print, keeping its newlines. */
export function safeBlock(text: string): string {
  return safeText(text, { multiline: true });
}

const guarded = new WeakSet<NodeJS.WritableStream>();

type WriteCallback = (error?: Error | null) => void;

/**
 * guardOutput makes every later write to a stream (standard output by default) pass through {@link safeBlock}.
 * Writing it twice is harmless. Strings and bytes are both handled (bytes are taken as UTF-8 text).
 */
export function guardOutput(stream: NodeJS.WriteStream = process.stdout): void {
  if (guarded.has(stream)) return;
  guarded.add(stream);
  const write = stream.write.bind(stream) as (chunk: string | Uint8Array, encoding?: BufferEncoding, cb?: WriteCallback) => boolean;
  const guardedWrite = (chunk: unknown, encodingOrCb?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean => {
    let text: string | undefined;
    const encoding = typeof encodingOrCb === 'string' ? encodingOrCb : undefined;
    if (typeof chunk === 'string') text = encoding === undefined || /^utf-?8$/i.test(encoding) ? chunk : Buffer.from(chunk, encoding).toString('utf8');
    else if (chunk instanceof Uint8Array) text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
    if (text === undefined) return write(chunk as string, encodingOrCb as BufferEncoding, cb);
    const safe = safeBlock(text);
    if (typeof encodingOrCb === 'function') return write(safe, 'utf8', encodingOrCb);
    return write(safe, 'utf8', cb);
  };
  stream.write = guardedWrite as typeof stream.write;
}
