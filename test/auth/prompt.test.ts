import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { isInteractive, MAX_PATH_TRIES, promptCredential } from '../../src/auth/prompt.js';
import { MirrorError } from '../../src/errors/index.js';
import { commandExists, fakeTerminal, here, killGroup, tempDir, waitFor } from './support.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const HOST = 'reg.example.com:5000';
const USERNAME_Q = `Username for ${HOST} (empty to use a Docker config file instead): `;

describe('auth/prompt', function () {
  this.timeout(20_000);

  it('never waits without a terminal', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const started = Date.now();
    assert.equal(isInteractive({ input, output }), false);
    assert.equal(await promptCredential({ host: HOST, input, output }), undefined);
    // A prompt that waited would wait for input that never comes (the test's 20 s); the bound leaves room for a busy CI.
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
  });

  it('asks for a username, then a password without echo, in raw mode', async () => {
    const t = fakeTerminal();
    const p = promptCredential({ host: HOST, input: t.input, output: t.output });
    await waitFor(() => t.written().includes(USERNAME_Q), 2000, 'the username question');
    t.input.write('robot$ci\r');
    await waitFor(() => t.written().includes('Password: '), 2000, 'the password question');
    t.input.write('pa');
    t.input.write('sXX\u007f\u007fs\r');
    const answer = await p;
    assert.deepEqual(answer, { credential: { kind: 'basic', username: 'robot$ci', password: 'pass' }, source: 'prompt' });
    assert.ok(t.written().includes('robot$ci'), 'the username is echoed');
    assert.ok(!t.written().includes('pas'), 'the password is not echoed');
    assert.deepEqual(t.rawModes, [true, false, true, false]);
  });

  it('a notice before the password goes out with echo already off, so a password typed on seeing it is not echoed', async () => {
    const t = fakeTerminal();
    const rawAtNotice: boolean[] = [];
    const write = t.output.write.bind(t.output) as (chunk: string) => boolean;
    (t.output as unknown as { write: (chunk: string) => boolean }).write = (chunk: string): boolean => {
      if (String(chunk).includes('NOTICE')) rawAtNotice.push(t.input.isRaw);
      return write(chunk);
    };
    const p = promptCredential({ host: HOST, input: t.input, output: t.output, username: 'bob', notice: 'NOTICE: type the password' });
    await waitFor(() => t.written().includes('Password: '), 2000, 'the password question');
    t.input.write('s3cret\r');
    const answer = await p;
    assert.deepEqual(answer?.credential, { kind: 'basic', username: 'bob', password: 's3cret' });
    assert.deepEqual(rawAtNotice, [true]);
    assert.ok(t.written().indexOf('NOTICE') < t.written().indexOf('Password: '));
    assert.ok(!t.written().includes('s3cret'));
  });

  it('keeps typed-ahead answers and ignores arrow keys', async () => {
    const t = fakeTerminal();
    t.input.write('al\u001b[Dice\nsecret\n');
    const answer = await promptCredential({ host: HOST, input: t.input, output: t.output });
    assert.deepEqual(answer?.credential, { kind: 'basic', username: 'alice', password: 'secret' });
  });

  it('Ctrl-C is INTERRUPTED and raw mode is restored', async () => {
    const t = fakeTerminal();
    const p = promptCredential({ host: HOST, input: t.input, output: t.output });
    await waitFor(() => t.written().includes(USERNAME_Q), 2000, 'the username question');
    t.input.write('bob\r');
    await waitFor(() => t.written().includes('Password: '), 2000, 'the password question');
    t.input.write('hunter\u0003');
    await assert.rejects(p, (e: unknown) => e instanceof MirrorError && e.code === 'INTERRUPTED' && !e.message.includes('hunter'));
    assert.equal(t.rawModes.at(-1), false);
  });

  it('the end of input is an AUTH error, not a hang', async () => {
    const t = fakeTerminal();
    t.input.end('');
    await assert.rejects(promptCredential({ host: HOST, input: t.input, output: t.output }), (e: unknown) => e instanceof MirrorError && e.code === 'AUTH');
  });

  it('an empty username asks for a Docker config file and reads the host from it', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const path = join(dir, 'config.json');
      await writeFile(path, JSON.stringify({ auths: { [`https://${HOST}`]: { auth: b64('fromfile:filepw') } } }));
      const t = fakeTerminal();
      const p = promptCredential({ host: HOST, input: t.input, output: t.output });
      t.input.write('\r');
      await waitFor(() => t.written().includes('Path of a Docker config file: '), 2000, 'the path question');
      t.input.write(`${path}\r`);
      const answer = await p;
      assert.deepEqual(answer?.credential, { kind: 'basic', username: 'fromfile', password: 'filepw' });
      assert.equal(answer?.source, `${path} auths (named at the prompt)`);

      // A file without the host's credentials is said, and another path asked for; Enter stops with that problem.
      const t2 = fakeTerminal();
      t2.input.write(`\n${path}\n\n`);
      await assert.rejects(
        promptCredential({ host: 'other.io', input: t2.input, output: t2.output }),
        (e: unknown) => e instanceof MirrorError && e.code === 'AUTH' && e.message === `Docker config file ${path} has no credentials for other.io`,
      );
      assert.match(t2.written(), /has no credentials for other\.io; try another path \(2 tries left\), or press Enter to stop/);
    } finally {
      await cleanup();
    }
  });

  it('a wrong path typed at the prompt asks again (bounded), and a right one then works', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const path = join(dir, 'config.json');
      await writeFile(path, JSON.stringify({ auths: { [HOST]: { auth: b64('fromfile:filepw') } } }));
      const typo = join(dir, 'confg.json');
      const t = fakeTerminal();
      const p = promptCredential({ host: HOST, input: t.input, output: t.output });
      t.input.write('\r');
      await waitFor(() => t.written().includes('Path of a Docker config file: '), 2000, 'the path question');
      t.input.write(`${typo}\r`);
      await waitFor(() => t.written().split('Path of a Docker config file: ').length === 3, 2000, 'the path asked again');
      assert.ok(t.written().includes(`Docker config file ${typo} does not exist; try another path (2 tries left)`), t.written());
      t.input.write(`${path}\r`);
      const answer = await p;
      assert.deepEqual(answer?.credential, { kind: 'basic', username: 'fromfile', password: 'filepw' });

      // Three wrong paths: the last problem is the error, and nothing more is asked.
      const t2 = fakeTerminal();
      t2.input.write(`\n${typo}\n${typo}\n${typo}\n${path}\n`);
      await assert.rejects(
        promptCredential({ host: HOST, input: t2.input, output: t2.output }),
        (e: unknown) => e instanceof MirrorError && e.code === 'BAD_INPUT' && e.message === `Docker config file ${typo} does not exist`,
      );
      assert.equal(t2.written().split('Path of a Docker config file: ').length - 1, MAX_PATH_TRIES);
    } finally {
      await cleanup();
    }
  });

  describe('on a real pseudo-terminal', () => {
    let cleanup: () => Promise<void>;
    let dir: string;
    before(async function () {
      if (!(await commandExists('script'))) this.skip();
    });
    beforeEach(async () => {
      ({ dir, cleanup } = await tempDir());
    });
    afterEach(async () => {
      await cleanup();
    });

    /** Runs the prompt child under `script`, sending each answer once the question before it is on the screen. */
    async function runOnPty(steps: Array<{ after: string; send: string }>): Promise<{ screen: string; result: Record<string, unknown> }> {
      const out = join(dir, 'result.json');
      const child = join(here, 'children', 'prompt-child.js');
      const proc = spawn('script', ['-qec', `${JSON.stringify(process.execPath)} ${JSON.stringify(child)} ${JSON.stringify(out)}`, '/dev/null'], {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
      let screen = '';
      proc.stdout.on('data', (d: Buffer) => (screen += d.toString('utf8')));
      proc.stderr.on('data', (d: Buffer) => (screen += d.toString('utf8')));
      let done = false;
      const exited = new Promise<void>((resolve) =>
        proc.on('close', () => {
          done = true;
          resolve();
        }),
      );
      try {
        let seen = 0;
        for (const step of steps) {
          await waitFor(() => screen.indexOf(step.after, seen) >= 0, 10_000, JSON.stringify(step.after));
          seen = screen.indexOf(step.after, seen) + step.after.length;
          proc.stdin.write(step.send);
        }
        await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error('prompt child did not exit')), 10_000))]);
      } finally {
        proc.stdin.end();
        if (!done) killGroup(proc.pid);
      }
      return { screen, result: JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown> };
    }

    it('reads the password without echo and returns the credential', async () => {
      const { screen, result } = await runOnPty([
        { after: USERNAME_Q, send: 'alice\r' },
        { after: 'Password: ', send: 'Sup3rSecretPw!\u007fX\u007f!\r' },
      ]);
      assert.equal(result['ok'], true, JSON.stringify(result));
      assert.equal(result['stdinIsTTY'], true);
      assert.deepEqual(result['answer'], { credential: { kind: 'basic', username: 'alice', password: 'Sup3rSecretPw!' }, source: 'prompt' });
      assert.ok(screen.includes('alice'), 'the username is echoed');
      assert.ok(!screen.includes('Sup3r'), `the password is not echoed: ${JSON.stringify(screen)}`);
    });

    it('Ctrl-C at the prompt is INTERRUPTED', async () => {
      const { result } = await runOnPty([{ after: USERNAME_Q, send: 'ali\u0003' }]);
      assert.equal(result['ok'], false);
      assert.equal(result['code'], 'INTERRUPTED');
    });
  });
});
