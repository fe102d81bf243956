/**
 * The oclif manifest: `npm run build` writes it for every compiled command, `mirror COMMAND` then imports that
 * command's module alone (a load hook records every module the process imports), and a manifest older than the
 * compiled commands is ignored (oclif reads them all, as without a manifest).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

  /** commandsLoaded runs `mirror ARGS...` and gives the command modules it imported. */
  const commandsLoaded = async (args: string[]): Promise<string[]> => {
    rmSync(join(work, 'loaded.txt'), { force: true });
    const r = await runCli(args, { env: { NODE_OPTIONS: `--import=${join(work, 'register.mjs')}` } });
    assert.equal(r.code, 0, r.stderr);
    const loaded = readFileSync(join(work, 'loaded.txt'), 'utf8').split('\n');
    return commandFiles().filter((f) => loaded.some((u) => u.endsWith(`/dist/src/commands/${f}`)));
  };

  it('the build writes a current manifest of every compiled command', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, MANIFEST_FILE), 'utf8')) as { commands: Record<string, unknown>; version: string };
    assert.deepEqual(Object.keys(manifest.commands).sort(), commandFiles().map((f) => f.replace(/\.js$/, '')));
    assert.equal(manifest.version, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    assert.equal(manifestIsStale(ROOT), false);
  });

  it('mirror version and mirror sync --help import no other command', async () => {
    assert.deepEqual(await commandsLoaded(['version']), ['version.js']);
    assert.deepEqual(await commandsLoaded(['sync', '--help']), []);
  });

  it('a manifest older than the compiled commands is ignored: every command is read', async () => {
    const file = join(ROOT, MANIFEST_FILE);
    const { atime, mtime } = statSync(file);
    utimesSync(file, new Date(0), new Date(0));
    try {
      assert.equal(manifestIsStale(ROOT), true);
      assert.deepEqual(await commandsLoaded(['version']), commandFiles());
    } finally {
      utimesSync(file, atime, mtime);
    }
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
