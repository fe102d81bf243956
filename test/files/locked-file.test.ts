/**
 * The config file lock and atomic replace: concurrent updates never lose an entry; a lock whose process is gone, or
 * that is too old, is taken over at once; a live one is waited for a bounded time and then named in the error;
 * temporary files of killed processes are removed by the next update; files are 0600, a created directory 0700.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { storeDockerConfigAuth } from '../../src/auth/docker-config.js';
import { HOST_TAG, removeLeftovers, updateLockedFile } from '../../src/files/locked-file.js';
import { MirrorError } from '../../src/errors/index.js';
import { tempDir } from '../auth/support.js';

/** deadPid gives the pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  await new Promise((resolve) => child.on('exit', resolve));
  return pid;
}

const SECRET = 'Locked-S3cret';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('files/locked-file', function () {
  this.timeout(30_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  let file: string;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('mirror-lock-'));
    file = join(dir, 'config.json');
  });
  afterEach(async () => {
    await cleanup();
  });

  it('40 updates at once, for 40 hosts: every entry is there, no lock or temporary file is left', async () => {
    const hosts = Array.from({ length: 40 }, (_, i) => `reg-${i}.example.com:5000`);
    await Promise.all(hosts.map((h) => storeDockerConfigAuth(file, h, { kind: 'basic', username: 'u', password: `${SECRET}-${h}` })));
    const auths = (JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, unknown> }).auths;
    assert.deepEqual(Object.keys(auths).sort(), [...hosts].sort());
    assert.deepEqual(await readdir(dir), ['config.json']);
  });

  it('the file is 0600 and a directory it creates 0700', async () => {
    const deep = join(dir, 'a', 'b', 'config.json');
    await storeDockerConfigAuth(deep, 'reg.io', { kind: 'basic', username: 'u', password: SECRET });
    assert.equal((await stat(deep)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'a'))).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, 'a', 'b'))).mode & 0o777, 0o700);
  });

  it('a lock left by a process that is gone is taken over at once', async () => {
    const pid = await deadPid();
    await writeFile(`${file}.lock`, JSON.stringify({ pid, host: hostname(), nonce: 'dead', created: Date.now() }));
    const started = Date.now();
    await updateLockedFile(file, () => '{}\n', { waitMs: 5_000 });
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
    assert.equal(await readFile(file, 'utf8'), '{}\n');
    assert.deepEqual(await readdir(dir), ['config.json']);
  });

  it('a lock older than the stale age is taken over, whoever made it', async () => {
    await writeFile(`${file}.lock`, 'not even ours');
    const old = new Date(Date.now() - 120_000);
    await utimes(`${file}.lock`, old, old);
    await updateLockedFile(file, () => '{}\n', { waitMs: 5_000, staleMs: 60_000 });
    assert.deepEqual(await readdir(dir), ['config.json']);
  });

  it('a live lock is waited for, then named in a one-line error; nothing is written', async () => {
    await writeFile(`${file}.lock`, JSON.stringify({ pid: process.ppid, host: hostname(), nonce: 'live', created: Date.now() }));
    const started = Date.now();
    await assert.rejects(updateLockedFile(file, () => '{}\n', { waitMs: 400 }), (e: unknown) => {
      assert.ok(e instanceof MirrorError && e.code === 'BAD_INPUT', String(e));
      assert.match(e.describe(), new RegExp(`held by process ${process.ppid}`));
      assert.match(e.describe(), /delete .*config\.json\.lock/);
      return true;
    });
    const ms = Date.now() - started;
    assert.ok(ms >= 350 && ms < 3_000, `waited ${ms} ms`);
    assert.deepEqual((await readdir(dir)).sort(), ['config.json.lock']);
  });

  it('a lock released during the wait is taken', async () => {
    await writeFile(`${file}.lock`, JSON.stringify({ pid: process.ppid, host: hostname(), nonce: 'live', created: Date.now() }));
    const timer = setTimeout(() => void unlink(`${file}.lock`).catch(() => {}), 300);
    try {
      await updateLockedFile(file, () => '{}\n', { waitMs: 5_000 });
    } finally {
      clearTimeout(timer);
    }
    assert.equal(await readFile(file, 'utf8'), '{}\n');
  });

  it('temporary files of killed processes (this version and earlier ones) are removed by the next update; others stay', async () => {
    const dead = await deadPid();
    const leftover = join(dir, `.config.json.${HOST_TAG}-${dead}-0123456789ab.tmp`);
    const lockLeftover = join(dir, `.config.json.lock.${HOST_TAG}-${dead}-0123456789ab.tmp`);
    const otherHost = join(dir, `.config.json.ffffffff-${dead}-0123456789ab.tmp`);
    const live = join(dir, `.config.json.${HOST_TAG}-${process.ppid}-0123456789ab.tmp`);
    const older = join(dir, '.0123456789ab.tmp');
    const unrelated = join(dir, 'notes.txt');
    for (const f of [leftover, lockLeftover, otherHost, live, older, unrelated]) await writeFile(f, JSON.stringify({ auths: { x: { auth: b64(`u:${SECRET}`) } } }));
    const long = new Date(Date.now() - 3_600_000);
    await utimes(older, long, long);
    await storeDockerConfigAuth(file, 'reg.io', { kind: 'basic', username: 'u', password: 'other' });
    const left = (await readdir(dir)).sort();
    assert.deepEqual(left, ['.config.json.ffffffff-' + dead + '-0123456789ab.tmp', `.config.json.${HOST_TAG}-${process.ppid}-0123456789ab.tmp`, 'config.json', 'notes.txt'].sort());
    // Another host's file goes once it is older than the stale age.
    await utimes(otherHost, long, long);
    assert.deepEqual(await removeLeftovers(dir, 'config.json'), [otherHost]);
  });
});
