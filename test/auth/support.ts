/** Shared bits of the auth tests: temp dirs, the test credential helper, bounded child processes. */
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import type { Keychain } from '../../src/auth/keychain.js';
import type { Credential } from '../../src/auth/types.js';
import type { ProgressEvent } from '../../src/events/index.js';

/** here is the directory of the compiled test files (dist/test/auth). */
export const here = dirname(fileURLToPath(import.meta.url));

/** tempDir makes a temporary directory; `cleanup` removes it. */
export async function tempDir(prefix = 'mirror-auth-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const HELPER_SCRIPT = `#!/bin/sh
# docker-credential-testhelper: answers get/store/erase from files in $TESTHELPER_STORE.
store="\${TESTHELPER_STORE:?}"
action="$1"
key() { printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '_'; }
input=$(cat)
if [ "$action" = store ]; then what=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p'); else what="$input"; fi
echo "$action $what" >> "$store/calls.log"
case "$action" in
  get)
    f="$store/$(key "$input")"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    url=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')
    printf '%s' "$input" > "$store/$(key "$url")" ;;
  erase)
    f="$store/$(key "$input")"
    if [ -f "$f" ]; then rm -f "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo "unknown action $action" >&2; exit 3 ;;
esac
`;

/** TestHelper is a `docker-credential-testhelper` script on a private PATH. */
export interface TestHelper {
  binDir: string;
  storeDir: string;
  /** Environment with the helper first on PATH and its store set. */
  env: NodeJS.ProcessEnv;
  /** Puts an entry as if `store` had been called. */
  put(serverUrl: string, username: string, secret: string): Promise<void>;
  /** The lines the helper logged (`get host`, `store host`, `erase host`). */
  calls(): Promise<string[]>;
}

/** helperKey is the file name the helper script uses for a server URL. */
export function helperKey(serverUrl: string): string {
  return serverUrl.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** makeTestHelper writes the helper script (and optionally others) into `dir`. */
export async function makeTestHelper(dir: string): Promise<TestHelper> {
  const binDir = join(dir, 'bin');
  const storeDir = join(dir, 'helper-store');
  await mkdir(binDir, { recursive: true });
  await mkdir(storeDir, { recursive: true });
  const script = join(binDir, 'docker-credential-testhelper');
  await writeFile(script, HELPER_SCRIPT);
  await chmod(script, 0o755);
  const slow = join(binDir, 'docker-credential-slowhelper');
  await writeFile(slow, '#!/bin/sh\nexec sleep 20\n');
  await chmod(slow, 0o755);
  const broken = join(binDir, 'docker-credential-brokenhelper');
  await writeFile(broken, '#!/bin/sh\ncat >/dev/null\necho "backend exploded: $(date +%s)" >&2\nexit 2\n');
  await chmod(broken, 0o755);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${binDir}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, TESTHELPER_STORE: storeDir };
  return {
    binDir,
    storeDir,
    env,
    put: (serverUrl, username, secret) =>
      writeFile(join(storeDir, helperKey(serverUrl)), JSON.stringify({ ServerURL: serverUrl, Username: username, Secret: secret })),
    async calls() {
      try {
        return (await readFile(join(storeDir, 'calls.log'), 'utf8')).split('\n').filter((l) => l !== '');
      } catch {
        return [];
      }
    },
  };
}

/** RunResult is the outcome of {@link runBounded}. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/** runBounded runs a command with a time limit; on timeout its process group is killed. */
export function runBounded(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs: number; input?: string; cwd?: string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** killGroup kills a detached child's process group (the child and what it started). */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** commandExists tells whether a program is on PATH. */
export async function commandExists(name: string): Promise<boolean> {
  const r = await runBounded('sh', ['-c', `command -v ${name}`], { timeoutMs: 5000 });
  return r.code === 0;
}

/** FakeTerminal is a pair of streams that look like a TTY, with the raw-mode calls recorded. */
export interface FakeTerminal {
  input: PassThrough & { isTTY: boolean; isRaw: boolean; setRawMode: (mode: boolean) => unknown };
  output: PassThrough & { isTTY: boolean };
  /** Everything written to the output so far. */
  written(): string;
  rawModes: boolean[];
}

/** fakeTerminal builds a {@link FakeTerminal}. */
export function fakeTerminal(): FakeTerminal {
  const rawModes: boolean[] = [];
  const base = new PassThrough();
  const input = Object.assign(base, {
    isTTY: true,
    isRaw: false,
    setRawMode(mode: boolean): unknown {
      rawModes.push(mode);
      input.isRaw = mode;
      return input;
    },
  });
  const output = Object.assign(new PassThrough(), { isTTY: true });
  let text = '';
  output.on('data', (d: Buffer) => (text += d.toString('utf8')));
  return { input, output, written: () => text, rawModes };
}

/** collect gathers events; `text()` is all their messages joined, to check no secret leaks. */
export function collect(): { sink: (e: ProgressEvent) => void; events: ProgressEvent[]; text: () => string } {
  const events: ProgressEvent[] = [];
  return { sink: (e) => events.push(e), events, text: () => JSON.stringify(events) };
}

/** waitFor polls a condition every 20 ms, at most `ms` long. */
export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  for (let i = 0; i < Math.ceil(ms / 20) + 1; i++) {
    if (cond()) return;
    if (Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!cond()) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** memoryKeychain is a keychain held in a Map. */
export function memoryKeychain(available = true): Keychain & { entries: Map<string, Credential> } {
  const entries = new Map<string, Credential>();
  return {
    entries,
    isAvailable: async () => available,
    unavailableReason: () => (available ? undefined : 'no secret service (test)'),
    get: async (host) => (available ? entries.get(host) : undefined),
    store: async (host, credential) => {
      if (!available) throw new Error('the OS keychain is not available');
      entries.set(host, credential);
    },
    delete: async (host) => available && entries.delete(host),
  };
}


/** RecordedHelperCall is one run of a {@link RecordingHelper}: the action and exactly what it read on stdin. */
export interface RecordedHelperCall {
  action: string;
  input: string;
}

/** RecordingHelper is a `docker-credential-NAME` program of the tests' own that records what it is given. */
export interface RecordingHelper {
  /** The helper name (the part after `docker-credential-`). */
  name: string;
  binDir: string;
  /** PATH with the helper first. */
  env: NodeJS.ProcessEnv;
  /** Every call, in order. */
  calls(): Promise<RecordedHelperCall[]>;
  /** What it holds: server URL -> {ServerURL, Username, Secret}. */
  stored(): Promise<Record<string, { ServerURL: string; Username: string; Secret: string }>>;
}

/**
 * makeRecordingHelper writes `docker-credential-NAME` (a node script) into `dir/bin`: it speaks the credential-helper
 * protocol (`store` reads {ServerURL, Username, Secret}, `get`/`erase` read a server URL), keeps entries in a JSON
 * file, and logs every call with its input. `failStore`: `store` fails, repeating its input on stderr, as some
 * helpers do.
 */
export async function makeRecordingHelper(dir: string, name = 'recorder', options: { failStore?: boolean } = {}): Promise<RecordingHelper> {
  const binDir = join(dir, 'bin');
  await mkdir(binDir, { recursive: true });
  const log = join(dir, `${name}-calls.jsonl`);
  const store = join(dir, `${name}-store.json`);
  const script = `#!${process.execPath}
const fs = require('node:fs');
const action = process.argv[2] ?? '';
const input = fs.readFileSync(0, 'utf8');
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ action, input }) + '\\n');
let db = {};
try { db = JSON.parse(fs.readFileSync(${JSON.stringify(store)}, 'utf8')); } catch {}
const save = () => fs.writeFileSync(${JSON.stringify(store)}, JSON.stringify(db));
if (action === 'store') {
  if (${JSON.stringify(options.failStore === true)}) { process.stderr.write('cannot store ' + input + '\\n'); process.exit(1); }
  const entry = JSON.parse(input);
  db[entry.ServerURL] = entry;
  save();
} else if (action === 'get') {
  const entry = db[input.trim()];
  if (!entry) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
  process.stdout.write(JSON.stringify(entry));
} else if (action === 'erase') {
  if (!db[input.trim()]) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
  delete db[input.trim()];
  save();
} else {
  process.stderr.write('unknown action\\n');
  process.exit(3);
}
`;
  const path = join(binDir, `docker-credential-${name}`);
  await writeFile(path, script);
  await chmod(path, 0o755);
  return {
    name,
    binDir,
    env: { ...process.env, PATH: `${binDir}:${process.env['PATH'] ?? '/usr/bin:/bin'}` },
    async calls() {
      try {
        return (await readFile(log, 'utf8'))
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as RecordedHelperCall);
      } catch {
        return [];
      }
    },
    async stored() {
      try {
        return JSON.parse(await readFile(store, 'utf8')) as Record<string, { ServerURL: string; Username: string; Secret: string }>;
      } catch {
        return {};
      }
    },
  };
}
