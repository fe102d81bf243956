/**
 * Start-up: `npm run build` writes the oclif manifest for every compiled command and the one-file bundle
 * `dist/mirror.js` (scripts/bundle.mjs). `mirror COMMAND` then imports the bundle alone (a load hook records every
 * module the process imports); a bundle older than the compiled sources (a bare `tsc` since) is not used, and the
 * command's own module is imported; a manifest older than the compiled commands is ignored (oclif reads them all, as
 * without a manifest).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../../src/cli/commands.js';
import { COMMANDS_DIR, MANIFEST_FILE, manifestIsStale } from '../../src/cli/manifest.js';
import { runCli } from '../helpers/cli.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const commandFiles = (): string[] => readdirSync(join(ROOT, COMMANDS_DIR)).filter((f) => f.endsWith('.js')).sort();

describe('oclif manifest (start-up)', function () {
  this.timeout(60_000);
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'mirror-manifest-'));
    // A load hook that appends every module URL the process imports to a file.
    writeFileSync(join(work, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) { appendFileSync(${JSON.stringify(join(work, 'loaded.txt'))}, url + '\\n'); return next(url, context); }\n`);
    writeFileSync(join(work, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  /** loadedBy runs `mirror ARGS...` and gives the module URLs it imported. */
  const loadedBy = async (args: string[]): Promise<string[]> => {
    rmSync(join(work, 'loaded.txt'), { force: true });
    const r = await runCli(args, { env: { NODE_OPTIONS: `--import=${join(work, 'register.mjs')}` } });
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(join(work, 'loaded.txt'), 'utf8').split('\n');
  };
  /** commandsLoaded runs `mirror ARGS...` and gives the command modules of dist/src it imported. */
  const commandsLoaded = async (args: string[]): Promise<string[]> => {
    const loaded = await loadedBy(args);
    return commandFiles().filter((f) => loaded.some((u) => u.endsWith(`/dist/src/commands/${f}`)));
  };
  /** withOldMtime runs `fn` while `file` looks older than everything else in the build. */
  const withOldMtime = async (file: string, fn: () => Promise<void>): Promise<void> => {
    const { atime, mtime } = statSync(file);
    utimesSync(file, new Date(0), new Date(0));
    try {
      await fn();
    } finally {
      utimesSync(file, atime, mtime);
    }
  };

  it('the build writes a current manifest of every compiled command', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, MANIFEST_FILE), 'utf8')) as { commands: Record<string, unknown>; version: string };
    assert.deepEqual(Object.keys(manifest.commands).sort(), commandFiles().map((f) => f.replace(/\.js$/, '')));
    assert.equal(manifest.version, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    assert.equal(manifestIsStale(ROOT), false);
  });

  it('the bundle lists every compiled command', () => {
    assert.deepEqual(Object.keys(COMMANDS).sort(), commandFiles().map((f) => f.replace(/\.js$/, '')));
  });

  it('mirror version, mirror copy --help and mirror sync --help run from the bundle: no module of dist/src is imported', async () => {
    for (const args of [['version'], ['copy', '--help'], ['sync', '--help']]) {
      const loaded = await loadedBy(args);
      assert.ok(loaded.some((u) => u.endsWith('/dist/mirror.js')), `${args.join(' ')}: the bundle`);
      assert.deepEqual(loaded.filter((u) => u.includes('/dist/src/')), [], args.join(' '));
    }
  });

  it('a bundle older than the compiled sources is not used: mirror version imports its own command module alone', async () => {
    await withOldMtime(join(ROOT, 'dist', 'mirror.js'), async () => {
      const loaded = await loadedBy(['version']);
      assert.ok(!loaded.some((u) => u.endsWith('/dist/mirror.js')), 'the bundle is not imported');
      assert.deepEqual(await commandsLoaded(['version']), ['version.js']);
      assert.deepEqual(await commandsLoaded(['sync', '--help']), []);
    });
  });

  it('push and sync start over with a bounded young generation, and one GC thread unless a side is a directory, where Node can (process.execve); other commands do not', async () => {
    const record = join(work, 'argv.txt');
    writeFileSync(join(work, 'argv.mjs'), `import { appendFileSync } from 'node:fs';\nappendFileSync(${JSON.stringify(record)}, JSON.stringify(process.execArgv) + '\\n');\n`);
    const starts = async (args: string[], nodeOptions = ''): Promise<string[][]> => {
      rmSync(record, { force: true });
      const r = await runCli(args, { env: { NODE_OPTIONS: `--import=${join(work, 'argv.mjs')} ${nodeOptions}`.trim() } });
      assert.equal(r.code, 0, r.stderr);
      return readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
    };
    const canExec = typeof (process as { execve?: unknown }).execve === 'function';
    const RESTARTED = ['--max-semi-space-size=16', '--single-threaded-gc'];
    assert.deepEqual(await starts(['sync', '--help']), canExec ? [[], RESTARTED] : [[]]);
    assert.deepEqual(await starts(['push', '--help']), canExec ? [[], RESTARTED] : [[]]);
    // A directory on one side: garbage is collected with V8's helper threads (marking on the main thread let RSS grow).
    for (const args of [['sync', '--dest', 'dir', '--help'], ['sync', '--dest=dir', '--help'], ['sync', '-s', 'dir', '--help'], ['push', '--help', 'oci:./layout'], ['push', '--private-registry=oci:x', '--help']]) {
      assert.deepEqual(await starts(args), canExec ? [[], ['--max-semi-space-size=16']] : [[]], args.join(' '));
    }
    assert.deepEqual(await starts(['version']), [[]]);
    assert.deepEqual(await starts(['sync', '--help'], '--max-semi-space-size=32'), [[]], 'a bound the user set is kept');
  });

  it('a manifest older than the compiled commands is ignored: every command is read', async () => {
    await withOldMtime(join(ROOT, MANIFEST_FILE), async () => {
      assert.equal(manifestIsStale(ROOT), true);
      assert.deepEqual(await commandsLoaded(['version']), commandFiles());
    });
  });

  it('manifestIsStale: no manifest, a current one, an older one, a command added since', () => {
    const pkg = join(work, 'pkg');
    mkdirSync(join(pkg, COMMANDS_DIR), { recursive: true });
    const t = (s: number): Date => new Date(1_700_000_000_000 + s * 1000);
    writeFileSync(join(pkg, COMMANDS_DIR, 'a.js'), '');
    utimesSync(join(pkg, COMMANDS_DIR, 'a.js'), t(0), t(0));
    utimesSync(join(pkg, COMMANDS_DIR), t(0), t(0));
    assert.equal(manifestIsStale(pkg), false, 'no manifest');
    writeFileSync(join(pkg, MANIFEST_FILE), '{}');
    utimesSync(join(pkg, MANIFEST_FILE), t(10), t(10));
    assert.equal(manifestIsStale(pkg), false, 'current');
    utimesSync(join(pkg, COMMANDS_DIR, 'a.js'), t(20), t(20));
    assert.equal(manifestIsStale(pkg), true, 'a command compiled since');
    utimesSync(join(pkg, COMMANDS_DIR, 'a.js'), t(0), t(0));
    writeFileSync(join(pkg, COMMANDS_DIR, 'b.js'), '');
    utimesSync(join(pkg, COMMANDS_DIR, 'b.js'), t(0), t(0));
    utimesSync(join(pkg, COMMANDS_DIR), t(20), t(20));
    assert.equal(manifestIsStale(pkg), true, 'a command added since');
  });
});
