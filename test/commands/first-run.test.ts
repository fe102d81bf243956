/**
 * The first five minutes of a bmctl or skopeo user, through the built binary: help and version everywhere, the
 * positional form, one error style with a fix, the bundle checked before anyone is asked for a password, --report
 * checked before work, scheme mismatches as TLS errors, the progress bar at 80 columns (tmux) and plain lines for
 * TERM=dumb, the summary's next steps, --quiet, and a listing of a bundle without a registry.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode } from '../../src/errors/index.js';
import { blobEntry, buildOciLayout, DEMO_SPEC, describeFixture, type BuiltLayout, tinyImage, writeOrderedTar, writeTarBundle } from '../../testdata/make-fixtures.js';
import { commandExists } from '../auth/support.js';
import { assertNoSecrets, childEnv, runCliOnPty } from '../helpers/auth-env.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { BIN, runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoInspectRawDigest } from '../helpers/skopeo.js';
import { runInTmux } from '../helpers/tmux.js';

const USER = 'firstrun';
const PASSWORD = 'Fr1st-run:pw!';
const COMMANDS_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'src', 'commands');

/** inBatches runs `fn` over `items`, a few at a time (each run of the binary is a process of its own). */
async function inBatches<T, R>(items: readonly T[], fn: (item: T) => Promise<R>, size = 4): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

/** assertErrorStyle checks the whole of stderr is one `mirror: error:` line, under 200 characters, naming `names`. */
function assertErrorStyle(r: CliResult, code: number, ...names: Array<string | RegExp>): void {
  const what = `${r.stderr}${r.stdout}`;
  assert.equal(r.code, code, what);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr:\n${r.stderr}`);
  const line = lines[0]!;
  assert.ok(line.startsWith('mirror: error: '), line);
  assert.ok(line.length < 200, `${line.length} characters: ${line}`);
  assert.doesNotMatch(line, /internal error|Invalid URL|See more help|Nonexistent flag|›/, line);
  for (const n of names) {
    if (typeof n === 'string') assert.ok(line.includes(n), `"${n}" in: ${line}`);
    else assert.match(line, n);
  }
}

describe('the first five minutes (integration: the built binary, docker-registry, tmux)', function () {
  this.timeout(180_000);
  let work: string;
  let demo: BuiltLayout;
  let demoLast: string;
  let demoFirst: string;
  let notBundle: string;
  let certs: TestCerts;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-firstrun-'));
    demo = await buildOciLayout(DEMO_SPEC);
    demoLast = join(work, 'demo.tar.xz');
    demoFirst = join(work, 'demo-first.tar.zst');
    await writeTarBundle(demo.files, demoLast, { order: 'metadata-last', compression: 'xz' });
    await writeTarBundle(demo.files, demoFirst, { order: 'metadata-first', compression: 'zstd' });
    notBundle = join(work, 'holiday.jpg');
    writeFileSync(notBundle, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(4000, 7)]));
    certs = await makeCerts();
  });
  after(async () => {
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  describe('help, version, the positional form, one error style', () => {
    it('-h works for mirror and every command, and mirror help COMMAND is COMMAND --help', async () => {
      const ids = readdirSync(COMMANDS_DIR)
        .filter((f) => f.endsWith('.js'))
        .map((f) => f.replace(/\.js$/, ''));
      assert.ok(['push', 'login', 'logout', 'inspect', 'version', 'help'].every((c) => ids.includes(c)), ids.join(','));
      const root = await runCli(['-h']);
      assert.equal(root.code, 0, root.stderr);
      assert.equal(root.stdout, (await runCli(['--help'])).stdout);
      for (const id of ids) assert.ok(root.stdout.includes(`  ${id} `), `mirror -h lists ${id}`);
      // `mirror help -h` is the root help, as oclif has it (help is a keyword of its help).
      assert.equal((await runCli(['help', '-h'])).stdout, root.stdout);
      const commands = ids.filter((i) => i !== 'help');
      const runs = await inBatches(commands, (id) => Promise.all([runCli([id, '-h']), runCli([id, '--help']), runCli(['help', id])]), 2);
      for (const [i, id] of commands.entries()) {
        const [short, long, viaHelp] = runs[i]!;
        assert.equal(short.code, 0, `${id} -h: ${short.stderr}`);
        assert.match(short.stdout, new RegExp(`USAGE\\n  \\$ mirror ${id}`), `${id} -h shows its usage`);
        assert.match(short.stdout, /EXAMPLES/, `${id} -h has examples`);
        assert.equal(short.stdout, long.stdout);
        assert.equal(viaHelp.code, 0, viaHelp.stderr);
        assert.equal(viaHelp.stdout, long.stdout, `mirror help ${id}`);
      }
      // -h after other flags, too.
      const late = await runCli(['push', '--source', 'x.tar', '-h']);
      assert.equal(late.code, 0, late.stderr);
      assert.match(late.stdout, /USAGE/);
    });

    it('mirror version, --version and -v print the same line; version --json', async () => {
      const a = await runCli(['version']);
      const b = await runCli(['--version']);
      const c = await runCli(['-v']);
      assert.equal(a.code, 0, a.stderr);
      assert.match(a.stdout, /^mirror\/\d+\.\d+\.\d+ \S+ node-v\d+/);
      assert.equal(b.stdout, a.stdout);
      assert.equal(c.stdout, a.stdout);
      const j = await runCli(['version', '--json']);
      const doc = JSON.parse(j.stdout) as { version: string; node: string };
      assert.equal(doc.node, process.version);
      assert.ok(a.stdout.includes(doc.version));
    });

    it('mirror push BUNDLE REGISTRY is accepted, with flags on either side', async () => {
      const cases: string[][] = [
        ['push', demoLast, `oci:${join(work, 'pos-1')}`],
        ['push', '--source', demoLast, `oci:${join(work, 'pos-2')}`],
        ['push', '--private-registry', `oci:${join(work, 'pos-3')}`, demoLast],
        ['push', '--cacert', certs.ca.certFile, demoLast, `oci:${join(work, 'pos-4')}`],
      ];
      const nautilus = demo.images.find((i) => i.ref?.includes('nautilus'))!;
      for (const [n, args] of cases.entries()) {
        const r = await runCli(args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(await skopeoInspectRawDigest(`oci:${join(work, `pos-${n + 1}`)}:${nautilus.ref!}`), nautilus.digest);
      }
      const twice = await runCli(['push', '--source', demoLast, '--private-registry', 'oci:x', 'extra']);
      assertErrorStyle(twice, ExitCode.USAGE, 'unexpected argument "extra"');
    });

    it('a missing argument is never read from standard input, where --password-stdin keeps the password', async () => {
      const secret = 'St4ndard-input-secret';
      const login = await runCli(['login', '--username', USER, '--password-stdin'], { input: secret });
      assertErrorStyle(login, ExitCode.USAGE, 'missing HOST');
      const push = await runCli(['push', '--source', demoLast, '--username', USER, '--password-stdin'], { input: secret });
      assertErrorStyle(push, ExitCode.USAGE, 'missing --private-registry');
      const copy = await runCli(['copy', 'docker://127.0.0.1:9/a/b:1', '--dest-creds', USER, '--dest-password-stdin'], { input: secret });
      assertErrorStyle(copy, ExitCode.USAGE, 'missing DESTINATION');
      for (const r of [login, push, copy]) assertNoSecrets('output', r.stdout + r.stderr, [secret]);
    });

    it('every mistake is one line, `mirror: error: ...`, under 200 characters, with the fix', async () => {
      const report = join(work, 'no-such-dir', 'report.json');
      const cases: Array<{ args: string[]; code: number; names: Array<string | RegExp> }> = [
        { args: ['pusj', '-s', demoLast], code: 2, names: ['unknown command "pusj"', 'did you mean "mirror push"?'] },
        { args: ['push', '--privat-registry', 'x:5000', '-s', demoLast], code: 2, names: ['--privat-registry', 'did you mean --private-registry?'] },
        { args: ['push', '--sorce', demoLast, '-r', 'x:5000'], code: 2, names: ['did you mean --source?'] },
        { args: ['push'], code: 2, names: ['missing the bundle', 'usage: mirror push --source BUNDLE'] },
        { args: ['push', demoLast], code: 2, names: ['missing --private-registry', '--dry-run'] },
        { args: ['push', '-s', demoLast, '-r'], code: 2, names: ['--private-registry needs a value'] },
        { args: ['push', '-s', demoLast, '-r', 'x:5000', '--jobs', 'many'], code: 2, names: ['--jobs must be a whole number'] },
        { args: ['push', '-s', demoLast, '-r', 'x:5000', '--layer-compression', 'lz4'], code: 2, names: ['--layer-compression must be one of gzip, zstd, none'] },
        { args: ['push', '-s', demoLast, '-r', 'x:5000', '--cert', 'c.pem'], code: 2, names: ['--cert needs --key'] },
        { args: ['push', '-s', demoLast, '-r', '172.18.0.20:500O/ns'], code: 2, names: ['172.18.0.20:500O/ns', 'port "500O" is not a number'] },
        { args: ['push', '-s', demoLast, '-r', 'regsitry..local'], code: 2, names: ['"regsitry..local"'] },
        { args: ['push', '-s', demoLast, '-r', '172.18.0.20:99999/ns'], code: 2, names: ['172.18.0.20:99999/ns', 'out of range'] },
        { args: ['push', '-s', demoLast, '-r', '300.1.2.3:5000/ns'], code: 2, names: ['300.1.2.3:5000'] },
        { args: ['push', '-s', demoLast, '-r', 'oci:out', '--report', report], code: 2, names: [report, 'no such directory', '--report -'] },
        { args: ['push', '-s', demoLast, '-r', 'oci:out', '--report', work], code: 2, names: ['is a directory'] },
        { args: ['push', '-s', join(work, 'nope.tar.xz'), '-r', 'oci:out'], code: 3, names: ['nope.tar.xz'] },
        { args: ['push', '-s', notBundle, '-r', 'oci:out'], code: 3, names: ['holiday.jpg', 'not a bundle'] },
        { args: ['login'], code: 2, names: ['missing HOST'] },
        { args: ['inspect'], code: 2, names: ['missing LOCATION', 'TRANSPORT:REF | BUNDLE'] },
        { args: ['help', 'pusj'], code: 2, names: ['did you mean "mirror help push"?'] },
        { args: ['push', '-s', demoLast, '-r', 'http://127.0.0.1:9/ns', '--need-credential=false', '--retry-times', '0'], code: 6, names: ['127.0.0.1:9', 'check the registry address and port'] },
      ];
      const results = await inBatches(cases, (c) => runCli(c.args, { env: { XDG_CACHE_HOME: work } }));
      for (const [i, c] of cases.entries()) assertErrorStyle(results[i]!, c.code, ...c.names);
      // --json: the same error as one JSON document on stdout.
      const j = await runCli(['push', '--privat-registry', 'x', '--json']);
      assert.equal(j.code, 2);
      assert.deepEqual(JSON.parse(j.stdout), { status: 'error', code: 'USAGE', exitCode: 2, message: 'unknown flag --privat-registry; did you mean --private-registry?' });
    });
  });

  describe('against registries', () => {
    let open: TestRegistry;
    let guarded: TestRegistry;
    let tls: TestRegistry;

    before(async () => {
      open = await startRegistry();
      guarded = await startRegistry({ users: { [USER]: PASSWORD } });
      tls = await startRegistry({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
    });
    after(async () => {
      for (const r of [open, guarded, tls]) await r?.stop();
    });

    it('the bundle is checked before credentials are asked for; a wrong address still fails before the bundle is read', async function () {
      if (!(await commandExists('script'))) this.skip();
      const home = join(work, 'home-order');
      mkdirSync(home, { recursive: true });
      // On a terminal, with a registry that wants a password: the file is refused first, and nobody is asked.
      const r = await runCliOnPty(['push', '--source', notBundle, '--private-registry', `http://${guarded.host}/order`], childEnv(home), [], 30_000);
      assert.equal(r.code, ExitCode.BAD_INPUT, r.screen);
      assert.match(r.screen, /holiday\.jpg is not a bundle/);
      assert.doesNotMatch(r.screen, /Username for|Password/);
      // A refused address: an error in seconds, the bundle never read.
      const started = Date.now();
      const refused = await runCli(['push', '--source', demoLast, '--private-registry', 'http://127.0.0.1:9/ns', '--retry-times', '0']);
      assert.equal(refused.code, ExitCode.NETWORK, refused.stderr);
      assert.ok(Date.now() - started < 15_000, `failed in ${Date.now() - started} ms`);
      assert.doesNotMatch(refused.stderr, /reading bundle/);
    });

    it('--report is checked before any request; --report - is standard output, the summary goes to stderr', async () => {
      const proxy = await startFaultProxy({ upstream: open.url });
      try {
        const report = join(work, 'missing', 'r.json');
        const r = await runCli(['push', '-s', demoLast, '-r', `http://${proxy.host}/rep`, '--report', report]);
        assertErrorStyle(r, ExitCode.USAGE, report);
        assert.deepEqual(proxy.requests, [], 'nothing was sent');
      } finally {
        await proxy.stop();
      }
      const out = await runCli(['push', '-s', demoLast, '-r', `http://${open.host}/rep`, '--report', '-']);
      assert.equal(out.code, 0, out.stderr);
      const doc = JSON.parse(out.stdout) as { images: Array<{ status: string }>; summary: { pushed: number } };
      assert.equal(doc.summary.pushed, 3);
      assert.match(out.stderr, /3 images to .*: 3 pushed, 0 already present, 0 failed/);
      // --json with --report FILE: both, the file too.
      const file = join(work, 'rep.json');
      const both = await runCli(['push', '-s', demoLast, '-r', `http://${open.host}/rep`, '--report', file, '--json']);
      assert.equal(both.code, 0, both.stderr);
      assert.equal((JSON.parse(both.stdout) as { status: string }).status, 'ok');
      assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { summary: { skipped: number } }).summary.skipped, 3);
    });

    it('http:// to a TLS registry and https:// to a plain one are both TLS errors (exit 5)', async () => {
      const toTls = await runCli(['push', '-s', demoLast, '-r', `http://${tls.host}/x`, '--need-credential=false']);
      assertErrorStyle(toTls, ExitCode.TLS, 'speaks HTTPS');
      const toPlain = await runCli(['push', '-s', demoLast, '-r', `https://${open.host}/x`, '--need-credential=false']);
      assertErrorStyle(toPlain, ExitCode.TLS, 'plain HTTP');
    });

    it('--password-stdin on a terminal says it waits for the password, and reads it without echo', async function () {
      if (!(await commandExists('script'))) this.skip();
      const home = join(work, 'home-stdin');
      mkdirSync(home, { recursive: true });
      const r = await runCliOnPty(
        ['push', '--source', demoFirst, '--private-registry', `http://${guarded.host}/stdin`, '--username', USER, '--password-stdin'],
        childEnv(home),
        [{ after: `--password-stdin: standard input is a terminal; type the password for ${USER}`, send: `${PASSWORD}\r` }],
        60_000,
      );
      assert.equal(r.code, 0, r.screen);
      assertNoSecrets('terminal', r.screen, [PASSWORD], USER);
      assert.match(r.screen, /3 images to .*: 3 pushed/);
    });

    it('the summary ends with the mirror endpoint and its source registries, explains staging, says "already present"', async () => {
      const last = await runCli(['push', '-s', demoLast, '-r', `http://${open.host}/next`]);
      assert.equal(last.code, 0, last.stderr);
      const lines = last.stdout.trimEnd().split('\n');
      assert.equal(lines[0], `3 images to http://${open.host}/next: 3 pushed, 0 already present, 0 failed`);
      assert.deepEqual(lines.slice(-4, -1), [
        'next: give containerd, RKE2 or bmctl (registryMirrors) this mirror:',
        `  endpoint: http://${open.host}/v2/next`,
        '  hosts:    docker.io, gcr.io, quay.io',
      ]);
      // Then the command that writes that configuration (mirror config).
      assert.match(lines.at(-1) ?? '', /^next: mirror config containerd\|.* --mirror http:\/\/\S+\/next --source-registry docker\.io --source-registry gcr\.io --source-registry quay\.io$/);
      // The demo's blobs are small: those met before their metadata are held until it comes, then sent straight to
      // their repositories. A blob too large to hold (over 64 KiB) goes to the staging repository, which is explained.
      assert.doesNotMatch(last.stdout, /staging/);
      const img = tinyImage('staged', { layer: randomBytes(200 * 1024) });
      const stagedBundle = join(work, 'staged.tar');
      const index = { schemaVersion: 2, manifests: [img.entry('quay.io/team/staged:1.0')] };
      await writeOrderedTar(
        [blobEntry(img.layer), blobEntry(img.config), blobEntry(img.manifest), ['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')], ['index.json', Buffer.from(JSON.stringify(index))]],
        stagedBundle,
        'none',
      );
      const staged = await runCli(['push', '-s', stagedBundle, '-r', `http://${open.host}/staged`]);
      assert.equal(staged.code, 0, staged.stderr);
      assert.match(staged.stdout, /staging: 1 blob \(.*\) came before their images' metadata in the bundle/);
      assert.match(staged.stdout, /staged\/mirror-staging holds no images/);
      // Metadata first: no staging, nothing to explain.
      const first = await runCli(['push', '-s', demoFirst, '-r', `http://${open.host}/next-first`]);
      assert.equal(first.code, 0, first.stderr);
      assert.doesNotMatch(first.stdout, /staging/);
      // Again: one name for the status everywhere.
      const again = await runCli(['push', '-s', demoFirst, '-r', `http://${open.host}/next-first`]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /0 pushed, 3 already present, 0 failed/);
      assert.match(again.stderr, /^already present: docker\.io\/library\/busybox:1\.36 -> /m);
      assert.doesNotMatch(again.stdout + again.stderr, /skipped|\bpresent  /);
      assert.doesNotMatch(again.stdout, /B\/s/, 'no rate when nothing was sent');
      assert.doesNotMatch(last.stdout, /\d{2,}\.\d+ \S*B\/s/, 'rates rounded to two figures');
      const json = await runCli(['push', '-s', demoFirst, '-r', `http://${open.host}/next-first`, '--json']);
      // The report keeps its machine names (status "skipped", summary "skipped": version 1 and 2 of the format).
      const doc = JSON.parse(json.stdout) as { images: Array<{ status: string }>; summary: Record<string, number> };
      assert.deepEqual(doc.images.map((i) => i.status), ['skipped', 'skipped', 'skipped']);
      assert.equal(doc.summary['skipped'], 3);
    });

    it('--quiet prints one summary line and nothing else', async () => {
      const r = await runCli(['push', '-s', demoLast, '-r', `http://${open.host}/quiet`, '--quiet']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.equal(r.stdout, `3 images to http://${open.host}/quiet: 3 pushed, 0 already present, 0 failed\n`);
    });

    it('on an 80-column terminal: a bar with read/total, sent, rate, elapsed, ETA, images and retries that fits; lines above it', async function () {
      if (!(await commandExists('tmux'))) this.skip();
      // Layers above the in-memory limit are sent while they are read, so the read advances with the upload; random
      // text (made fast, stored uncompressed) keeps the bundle large enough to watch.
      const layout = await buildOciLayout({
        seed: 'bar',
        images: Array.from({ length: 3 }, (_, i) => ({ ref: `gcr.io/bar/image-${i}:1.0`, layers: [{ files: { 'data.txt': randomBytes(18 * 1024 * 1024).toString('base64') } }] })),
      });
      const file = join(work, 'bar.tar');
      await writeTarBundle(layout.files, file, { order: 'metadata-first', compression: 'none' });
      // 429 with Retry-After: 1 on the first blob checks: retries show, and the run lasts long enough to be watched.
      const proxy = await startFaultProxy({ upstream: open.url, rules: [{ kind: 'status-429', method: 'HEAD', nth: [1, 2] }] });
      try {
        const run = await runInTmux([process.execPath, BIN, 'push', file, `http://${proxy.host}/bar`], { columns: 80, env: { TERM: 'xterm-256color' } });
        assert.equal(run.code, 0, run.last);
        const all = run.screens.join('\n').split('\n');
        // The bar's two lines never wrap (capture-pane -J joins wrapped lines, so a longer one would show here).
        const barLines = all.filter((l) => /^(reading|re-reading|finishing) /.test(l) || /^ {11}sent /.test(l));
        for (const line of barLines) assert.ok(line.length < 80, `a bar line wider than the terminal: ${line}`);
        const bar = all.filter((l) => /^reading\s+\[[= ]+\]\s+\d+%\s+\S+ \S+ of \S+ \S+/.test(l));
        assert.ok(bar.length > 0, `the bar was drawn:\n${run.screens.join('\n----\n')}`);
        assert.ok(all.some((l) => /^\s+sent \S+ \S+( at \S+ \S+\/s)?\s+elapsed \d+:\d\d\s+images \d+\/(\d+|\?)/.test(l)), 'bytes sent, elapsed, images');
        assert.ok(all.some((l) => /images \d+\/3/.test(l)), 'images total as soon as known');
        assert.ok(all.some((l) => /\bretries [1-9]/.test(l)), 'retries on the bar');
        assert.ok(all.some((l) => /^retry 1 in \d+\.\ds: HTTP 429 \(HEAD bar\/bar\/image-\d\/blobs\/sha256:[a-f0-9]{12}\)$/.test(l)), 'each retry as it happens');
        assert.ok(all.some((l) => / at \d+(\.\d)? [KMG]?i?B\/s/.test(l)), 'the send rate');
        assert.match(run.last, /3 images to .*: 3 pushed, 0 already present, 0 failed/);
        assert.match(run.last, /^pushed: gcr\.io\/bar\/image-0:1\.0 -> /m);
        assert.doesNotMatch(run.last, /^(reading|finishing)\s+\[/m, 'the bar is gone at the end');
      } finally {
        await proxy.stop();
      }
    });

    it('TERM=dumb on a terminal gets plain lines, no cursor movement', async function () {
      if (!(await commandExists('script'))) this.skip();
      const home = join(work, 'home-dumb');
      mkdirSync(home, { recursive: true });
      const r = await runCliOnPty(['push', demoLast, `http://${open.host}/dumb`], childEnv(home, { TERM: 'dumb' }), [], 60_000);
      assert.equal(r.code, 0, r.screen);
      assert.match(r.screen, /reading bundle .*demo\.tar\.xz/);
      assert.match(r.screen, /pushed: gcr\.io\/kubernetes-e2e-test-images\/nautilus:1\.0 -> /);
      assert.ok(!r.screen.includes('\u001b['), `no escape sequences: ${JSON.stringify(r.screen.slice(0, 400))}`);
    });

    it('lists a bundle without a registry: push --dry-run --source B, and inspect B, the same table', async () => {
      const fixture = await describeFixture('demo');
      const viaPush = await runCli(['push', '--dry-run', '--source', demoLast]);
      const viaInspect = await runCli(['inspect', demoLast]);
      assert.equal(viaPush.code, 0, viaPush.stderr);
      assert.equal(viaInspect.code, 0, viaInspect.stderr);
      assert.equal(viaPush.stdout, viaInspect.stdout);
      const lines = viaInspect.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^bundle .*demo\.tar\.xz \(xz.*OCI layout\): 3 images$/);
      assert.match(lines[1]!, /^IMAGE\s+DIGEST\s+TYPE\s+SIZE\s+PLATFORMS$/);
      for (const [ref, img] of Object.entries(fixture.images)) {
        const row = lines.find((l) => l.startsWith(`${ref} `));
        assert.ok(row, `${ref} listed`);
        assert.ok(row.includes(img.digest.slice(0, 19)), `${ref}: digest`);
        assert.match(row, /(OCI manifest|OCI index)\s+\d+(\.\d+)? KiB/);
      }
      assert.match(lines.find((l) => l.startsWith('docker.io/library/busybox:1.36'))!, /OCI index\s+\S+ KiB\s+linux\/amd64, linux\/arm64\/v8$/);
      const json = await runCli(['inspect', demoLast, '--json']);
      const doc = JSON.parse(json.stdout) as { images: Array<{ name: string; digest: string; mediaType: string; platforms: string[]; size: number }> };
      assert.deepEqual(
        doc.images.map((i) => [i.name, i.digest]).sort(),
        Object.entries(fixture.images).map(([ref, i]) => [ref, i.digest]).sort(),
      );
      assert.ok(doc.images.every((i) => i.size > 0 && i.mediaType.startsWith('application/vnd.oci.image.')));
      // With --platform, the listing shows what such a push would push: busybox's amd64 manifest alone.
      const amd64 = await runCli(['push', '--dry-run', '--source', demoLast, '--platform', 'linux/amd64']);
      assert.equal(amd64.code, 0, amd64.stderr);
      const busybox = fixture.images['docker.io/library/busybox:1.36']!;
      const row = amd64.stdout.split('\n').find((l) => l.startsWith('docker.io/library/busybox:1.36 '));
      assert.ok(row?.includes(busybox.platforms['linux/amd64']!.slice(0, 19)) && row.includes('OCI manifest'), `${row}`);
    });
  });
});
