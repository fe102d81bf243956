/**
 * The interactive credential prompt, as bmctl offers it: a username and a password read without echo, or (for an
 * empty username) the path of a Docker config file to take the host's credentials from. Only on a terminal: without
 * one it returns at once and never waits for input.
 */
import { homedir } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { MirrorError, abortError } from '../errors/index.js';
import { lookupInConfig, readDockerConfig } from './docker-config.js';
import type { ResolvedCredential } from './types.js';

/** PromptInput is the stream answers are read from (a TTY has `isTTY` and `setRawMode`). */
export type PromptInput = NodeJS.ReadableStream & {
  isTTY?: boolean;
  isRaw?: boolean;
  readableEnded?: boolean;
  setRawMode?: (mode: boolean) => unknown;
};

/** PromptOutput is the stream questions are written to (standard error by default, so stdout stays clean). */
export type PromptOutput = NodeJS.WritableStream & { isTTY?: boolean };

/** PromptStreams are the terminal ends of a prompt. */
export interface PromptStreams {
  /** Default: `process.stdin`. */
  input?: PromptInput;
  /** Default: `process.stderr`. */
  output?: PromptOutput;
  /** Whether this is an interactive terminal. Default: both `input.isTTY` and `output.isTTY`. */
  terminal?: boolean;
}

/** PromptOptions tune {@link promptCredential}. */
export interface PromptOptions extends PromptStreams {
  /** The registry `host[:port]` asked about. */
  host: string;
  /** A username already known (`--username` without a password): only the password is asked. */
  username?: string | undefined;
  /** A line shown before the questions (`credentials from keychain were refused`). */
  notice?: string | undefined;
  /** Reads the host's credential from a config file named at the prompt. Default: that file's helper, then `auths`. */
  readConfigFile?: (path: string, host: string, signal?: AbortSignal) => Promise<ResolvedCredential | undefined>;
  /** Cancels the prompt (INTERRUPTED). */
  signal?: AbortSignal | undefined;
}

/** MAX_ANSWER_LENGTH bounds one answer, in characters. */
export const MAX_ANSWER_LENGTH = 4096;

/** isInteractive tells whether a prompt may be shown: both ends are terminals (or `terminal` says so). */
export function isInteractive(streams: PromptStreams = {}): boolean {
  if (streams.terminal !== undefined) return streams.terminal;
  const input = streams.input ?? process.stdin;
  const output = streams.output ?? process.stderr;
  return input.isTTY === true && output.isTTY === true;
}

/**
 * promptCredential asks for the credential of a host on the terminal. Returns undefined at once when there is no
 * terminal. Ctrl-C is an INTERRUPTED error; the end of input is an AUTH error.
 */
export async function promptCredential(options: PromptOptions): Promise<ResolvedCredential | undefined> {
  if (!isInteractive(options)) return undefined;
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stderr;
  const reader = new LineReader(input, output, options.signal);
  const notice = options.notice ? `${options.notice}\n` : '';
  let username = options.username;
  if (username === undefined) {
    username = (await reader.read(`${notice}Username for ${options.host} (empty to use a Docker config file instead): `, true)).trim();
    if (username === '') return askConfigFile(reader, output, options);
  }
  // The notice goes out with the question, after echo is off: a password typed as soon as the notice shows is never
  // echoed by the terminal.
  const password = await reader.read(`${options.username === undefined ? '' : notice}Password: `, false);
  return { credential: { kind: 'basic', username, password }, source: 'prompt' };
}

/** MAX_PATH_TRIES bounds how often the path of a Docker config file is asked for. */
export const MAX_PATH_TRIES = 3;

/**
 * askConfigFile asks for the path of a Docker config file and takes the host's credential from it. A path that
 * cannot be read, or a file without credentials for the host, is said and asked again, at most
 * {@link MAX_PATH_TRIES} times; an empty answer stops.
 */
async function askConfigFile(reader: LineReader, output: PromptOutput, options: PromptOptions): Promise<ResolvedCredential> {
  const read = options.readConfigFile ?? readConfigFile;
  let problem: MirrorError | undefined;
  for (let tries = 1; ; tries++) {
    let path = (await reader.read('Path of a Docker config file: ', true)).trim();
    if (path === '') throw problem ?? new MirrorError('AUTH', `no credentials given at the prompt for ${options.host}`, { phase: 'auth' });
    if (path === '~' || path.startsWith('~/')) path = homedir() + path.slice(1);
    try {
      const found = await read(path, options.host, options.signal);
      if (found) return { credential: found.credential, source: `${found.source} (named at the prompt)` };
      problem = new MirrorError('AUTH', `Docker config file ${path} has no credentials for ${options.host}`, { phase: 'auth', file: path });
    } catch (e) {
      if (e instanceof MirrorError && e.code === 'INTERRUPTED') throw e;
      problem = e instanceof MirrorError ? e : new MirrorError('AUTH', `Docker config file ${path} could not be read`, { phase: 'auth', file: path, cause: e });
    }
    if (tries >= MAX_PATH_TRIES) throw problem;
    const left = MAX_PATH_TRIES - tries;
    output.write(`${problem.message}; try another path (${left} ${left === 1 ? 'try' : 'tries'} left), or press Enter to stop\n`);
  }
}

async function readConfigFile(path: string, host: string, signal?: AbortSignal): Promise<ResolvedCredential | undefined> {
  const config = await readDockerConfig(path);
  if (!config) throw new MirrorError('BAD_INPUT', `Docker config file ${path} does not exist`, { phase: 'auth', file: path });
  return lookupInConfig(config, host, { signal });
}

/**
 * LineReader reads answers from a terminal in raw mode, so the password is never echoed and Ctrl-C is seen as a
 * key: it echoes typed characters itself when asked to, handles backspace, ignores escape sequences (arrow keys),
 * and keeps what was typed ahead of the next question.
 */
class LineReader {
  private pending = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly input: PromptInput,
    private readonly output: PromptOutput,
    private readonly signal: AbortSignal | undefined,
  ) {}

  read(question: string, echo: boolean): Promise<string> {
    const { input, output, signal } = this;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const wasRaw = input.isRaw === true;
    const raw = typeof input.setRawMode === 'function';
    // Raw mode first, so nothing typed after the question appears is echoed by the terminal.
    if (raw) input.setRawMode?.(true);
    output.write(question);
    return new Promise<string>((resolve, reject) => {
      let line = '';
      let escape: 'none' | 'start' | 'csi' = 'none';
      const cleanup = (): void => {
        input.removeListener('data', onData);
        input.removeListener('end', onEnd);
        input.removeListener('error', onError);
        signal?.removeEventListener('abort', onAbort);
        if (raw) input.setRawMode?.(wasRaw);
        input.pause();
      };
      const done = (fn: () => void): void => {
        cleanup();
        fn();
      };
      const finishLine = (): void => {
        output.write('\n');
        done(() => resolve(line));
      };
      const fail = (e: MirrorError): void => {
        output.write('\n');
        done(() => reject(e));
      };
      // Returns true when the line is complete (or failed); the rest of `text` is kept for the next question.
      const consume = (text: string): boolean => {
        const chars = Array.from(text);
        for (let i = 0; i < chars.length; i++) {
          const c = chars[i] ?? '';
          if (escape === 'start') {
            escape = c === '[' || c === 'O' ? 'csi' : 'none';
            continue;
          }
          if (escape === 'csi') {
            if (c >= '@' && c <= '~') escape = 'none';
            continue;
          }
          if (c === '\r' || c === '\n') {
            let rest = chars.slice(i + 1).join('');
            if (c === '\r' && rest.startsWith('\n')) rest = rest.slice(1);
            this.pending = rest;
            finishLine();
            return true;
          }
          if (c === '\u0003') {
            this.pending = '';
            fail(new MirrorError('INTERRUPTED', 'interrupted at the credential prompt', { phase: 'auth' }));
            return true;
          }
          if (c === '\u0004') {
            if (line === '') {
              this.pending = '';
              fail(new MirrorError('AUTH', 'no answer at the credential prompt (end of input)', { phase: 'auth' }));
              return true;
            }
            continue;
          }
          if (c === '\u007f' || c === '\b') {
            if (line.length > 0) {
              const cps = Array.from(line);
              cps.pop();
              line = cps.join('');
              if (echo) output.write('\b \b');
            }
            continue;
          }
          if (c === '\u0015') {
            // Ctrl-U: erase the line.
            if (echo) output.write('\b \b'.repeat(Array.from(line).length));
            line = '';
            continue;
          }
          if (c === '\u001b') {
            escape = 'start';
            continue;
          }
          if (c < ' ') continue;
          if (line.length >= MAX_ANSWER_LENGTH) continue;
          line += c;
          if (echo) output.write(c);
        }
        return false;
      };
      const onData = (chunk: Buffer | string): void => {
        const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
        consume(text);
      };
      const onEnd = (): void => {
        if (line !== '') finishLine();
        else fail(new MirrorError('AUTH', 'no answer at the credential prompt (end of input)', { phase: 'auth' }));
      };
      const onError = (e: Error): void => {
        fail(new MirrorError('AUTH', 'the terminal could not be read', { phase: 'auth', cause: e }));
      };
      const onAbort = (): void => fail(abortError(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      input.on('error', onError);
      input.on('end', onEnd);
      if (this.pending !== '') {
        const typedAhead = this.pending;
        this.pending = '';
        if (consume(typedAhead)) return;
      }
      if (input.readableEnded === true) {
        onEnd();
        return;
      }
      input.on('data', onData);
      input.resume();
    });
  }
}
