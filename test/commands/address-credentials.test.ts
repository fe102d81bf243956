/**
 * Credentials written into the registry address are refused, through the built binary, with a usage error that
 * does not repeat them: `push --private-registry` (with a scheme or without, --debug, --json), an address given as
 * an argument that oclif quotes in its own error, `login` and `logout`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors/index.js';
import { buildOciLayout, DEMO_SPEC, writeTarBundle } from '../../testdata/make-fixtures.js';
import { assertNoSecrets, assertOneLineError, homeMaker, isolatedEnv } from '../helpers/auth-env.js';
import { runCli, type CliResult } from '../helpers/cli.js';

const USER = 'robot';
const URL_PASSWORD = 'hunter2-in-url';

describe('mirror: credentials in the registry address (integration)', function () {
  this.timeout(120_000);
  let work: string;
  let bundle: string;
  const home = homeMaker(() => work);
  const mirror = (args: string[], options: { input?: string } = {}): Promise<CliResult> =>
    runCli(args, { env: isolatedEnv(home()), input: options.input });

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-address-'));
    const demo = await buildOciLayout(DEMO_SPEC);
    bundle = join(work, 'demo.tar');
    await writeTarBundle(demo.files, bundle, { order: 'metadata-first', compression: 'none' });
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const address = `http://${USER}:${URL_PASSWORD}@127.0.0.1:9/ns`;
  const cases: Array<{ name: string; args: () => string[]; names: Array<string | RegExp> }> = [
    { name: 'push --private-registry', args: () => ['push', '--source', bundle, '--private-registry', address], names: ['***@127.0.0.1:9/ns', '--password-stdin'] },
    { name: 'push --private-registry --debug', args: () => ['push', '--source', bundle, '--private-registry', address, '--debug'], names: ['--password-stdin'] },
    { name: 'push -r without a scheme', args: () => ['push', '--source', bundle, '-r', `${USER}:${URL_PASSWORD}@127.0.0.1:9/ns`], names: ['***@127.0.0.1:9/ns'] },
    { name: 'push with the address as an argument oclif quotes', args: () => ['push', '--source', bundle, address], names: [/http:\/\/\*\*\*@127\.0\.0\.1:9\/ns/] },
    { name: 'login', args: () => ['login', `http://${USER}:${URL_PASSWORD}@127.0.0.1:9`, '--username', USER, '--password-stdin'], names: ['***@127.0.0.1:9', '--password-stdin'] },
    { name: 'logout', args: () => ['logout', `https://${USER}:${URL_PASSWORD}@127.0.0.1:9`], names: ['***@127.0.0.1:9'] },
  ];
  for (const c of cases) {
    it(`${c.name}: a usage error (exit 2) that never repeats the password`, async () => {
      const r = await mirror(c.args(), { input: 'x' });
      assert.equal(r.code, ExitCode.USAGE, r.stderr);
      if (!c.args().includes('--debug')) assertOneLineError(r.stderr, ...c.names);
      else assert.match(r.stderr, /--password-stdin/);
      assertNoSecrets('output', r.stdout + r.stderr, [URL_PASSWORD], USER);
    });
  }

  it('--json: the error document does not repeat it either', async () => {
    const r = await mirror(['push', '--source', bundle, '--private-registry', address, '--json']);
    assert.equal(r.code, ExitCode.USAGE);
    const doc = JSON.parse(r.stdout) as { code: string; message: string };
    assert.equal(doc.code, 'USAGE');
    assert.match(doc.message, /\*\*\*@127\.0\.0\.1:9\/ns/);
    assertNoSecrets('output', r.stdout + r.stderr, [URL_PASSWORD], USER);
  });
});
