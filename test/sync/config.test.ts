/**
 * Sync config, naming, tag selection, shards, durations and the lock, without a registry: mistakes answered with
 * FILE:LINE:COLUMN, skopeo's YAML read as skopeo reads it, skopeo's and push's naming, every tag filter against a
 * hand-computed set, the shard split, and the lock's exclusion, stale takeover and pid reuse.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { safeText, type MirrorError } from '../../src/errors/index.js';
import { forgetSecrets } from '../../src/errors/sanitize.js';
import { ConfigError, loadSyncConfig, type DestinationConfig, type TagRule } from '../../src/sync/config/index.js';
import { isNativeYaml, parseNativeYaml } from '../../src/sync/config/native.js';
import { parseSkopeoYaml } from '../../src/sync/config/skopeo.js';
import { compileRegex } from '../../src/sync/config/checks.js';
import { parseDuration } from '../../src/sync/duration.js';
import { referenceResolver } from '../../src/sync/credentials.js';
import { acquireLock, processStartOf } from '../../src/sync/lock.js';
import { destinationFor, destinationRepository } from '../../src/sync/naming.js';
import { selectTags } from '../../src/sync/select.js';
import { parseVersionRange } from '../../src/sync/semver.js';
import { inShard, parseShard, shardFromEnv, shardOf } from '../../src/sync/shard.js';

const NATIVE_OK = `apiVersion: mirror/v1
kind: Sync
defaults:
  jobs: 4
  platforms: [linux/amd64]
registries:
  quay.io:
    credentials:
      env: {username: QUAY_USER, password: QUAY_PASSWORD}
    requests: {concurrency: 4, perSecond: 10}
  10.0.0.5:5000:
    credentials: {file: /run/secrets/mirror}
    tls: {ca: /etc/mirror/ca.crt}
destination:
  registry: 10.0.0.5:5000/mirror
  keepRegistryHost: false
  rewrite:
    '^library/(.*)$': 'hub/$1'
sync:
  - repository: quay.io/prometheus/node-exporter
    tags: {semver: '>=1.6', newest: 3}
  - prefix: 10.0.0.9:5000/team
    tags: {include: ['^v'], exclude: ['-rc']}
    referrers: false
  - repository: busybox
    digests: ['sha256:${'a'.repeat(64)}']
`;

/** issuesOf gives `LINE:COLUMN path: message` of each mistake of a native file. */
function issuesOf(text: string): string[] {
  try {
    parseNativeYaml(text, 'f.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.exitCode, 2);
    return e.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
  }
  return [];
}

describe('sync config', () => {
  it('reads a native file: registries, destination mapping, entries', () => {
    const c = parseNativeYaml(NATIVE_OK, 'f.yaml');
    assert.equal(c.format, 'native');
    assert.equal(c.defaults.jobs, 4);
    assert.deepEqual(c.registries.get('quay.io')?.credentials, { kind: 'env', username: 'QUAY_USER', password: 'QUAY_PASSWORD' });
    assert.deepEqual(c.registries.get('quay.io')?.requests, { concurrency: 4, perSecond: 10 });
    assert.equal(c.destination.host, '10.0.0.5:5000');
    assert.equal(c.destination.namespace, 'mirror');
    assert.equal(c.entries.length, 3);
    assert.equal(c.entries[0]!.origin, 'f.yaml:20:5');
    assert.deepEqual([c.entries[1]!.kind, c.entries[1]!.registry, c.entries[1]!.path, c.entries[1]!.referrers], ['prefix', '10.0.0.9:5000', 'team', false]);
    assert.deepEqual([c.entries[2]!.registry, c.entries[2]!.path], ['docker.io', 'library/busybox']);
  });

  it('answers mistakes with their line and column, all of them', () => {
    const text = NATIVE_OK.replace('jobs: 4', 'jobs: four')
      .replace('env: {username: QUAY_USER, password: QUAY_PASSWORD}', 'username: bob')
      .replace("tags: {semver: '>=1.6', newest: 3}", "tags: {semver: '>=1.6', newst: 3}")
      .replace("include: ['^v']", "include: ['(v']")
      .replace('  - repository: busybox', '  - repository: busybox\n    prefix: quay.io');
    assert.deepEqual(issuesOf(text), [
      '4:9 defaults.jobs: expected an integer from 1 to 64, got "four"',
      '9:7 registries."quay.io".credentials.username: unknown key "username" (a credential is given by reference, never written here: env, file, dockerConfig or helper)',
      '9:7 registries."quay.io".credentials: needs one of "env", "file", "dockerConfig", "helper"',
      '21:29 sync[0].tags.newst: unknown key "newst" (did you mean "newest"?)',
      '23:22 sync[1].tags.include[0]: not a valid regular expression: /(v/: Unterminated group',
      '25:5 sync[2]: give only one of "repository", "prefix"',
    ]);
  });

  it('syntax errors, missing keys, wrong version, bad values', () => {
    assert.match(issuesOf('apiVersion: mirror/v1\nkind: Sync\nsync: [\n')[0]!, /^\d+:\d+ : Flow sequence/);
    assert.deepEqual(issuesOf('apiVersion: mirror/v2\nkind: Sync\ndestination: {registry: a.io}\nsync: [{repository: a.io/b}]\n'), ['1:13 apiVersion: expected "mirror/v1", got "mirror/v2"']);
    assert.deepEqual(issuesOf('apiVersion: mirror/v1\nkind: Sync\nsync: []\n'), ['1:1 : missing "destination" (where images go, with push\'s mapping: the source host dropped, the path kept, under the namespace)', '3:7 sync: expected at least 1 item']);
    assert.deepEqual(issuesOf('apiVersion: mirror/v1\nkind: Sync\ndestination: {registry: "a.io/Bad"}\nsync:\n  - repository: a.io/b:1.0\n    digests: [sha256:12]\n    tags: {newestBy: created}\n'), [
      '3:25 destination.registry: invalid registry "a.io/Bad": bad namespace "Bad" (lower-case letters, digits and separators only); use HOST[:PORT][/NAMESPACE], https://HOST[:PORT]/v2/NAMESPACE, http://HOST[:PORT] or oci:DIR'.replace(/; use.*$/, ''),
      '5:17 sync[0].repository: "a.io/b:1.0" names an image; name the repository and select tags with "tags" (digests with "digests")',
      '6:15 sync[0].digests[0]: "sha256:12" is not a digest (sha256:<64 hex digits>)',
      '7:11 sync[0].tags: newestBy needs newest',
    ]);
    assert.deepEqual(issuesOf('apiVersion: mirror/v1\nkind: Sync\nkind: Sync\n').length, 1, 'a duplicate key');
  });

  it('loadSyncConfig: a missing file and a skopeo file given to --config are usage errors', async () => {
    await assert.rejects(loadSyncConfig({ kind: 'native', file: '/nonexistent/sync.yaml' }), (e: Error & { exitCode?: number }) => e.exitCode === 2 && /no such file/.test(e.message));
    const dir = mkdtempSync(join(tmpdir(), 'sync-cfg-'));
    try {
      const f = join(dir, 'skopeo.yaml');
      writeFileSync(f, 'quay.io:\n  images:\n    busybox: []\n');
      await assert.rejects(loadSyncConfig({ kind: 'native', file: f }), (e: MirrorError) => /not a mirror\/v1 sync file.*--src yaml --dest docker/.test(e.describe()));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('YAML syntax mistakes are placed at their line and column in the library\'s words cleaned; a byte order mark is no mistake', () => {
    const at = (text: string): string => {
      try {
        parseNativeYaml(text, 'f.yaml');
      } catch (e) {
        return (e as ConfigError).lines().join('\n');
      }
      return 'no error';
    };
    const head = 'apiVersion: mirror/v1\nkind: Sync\ndestination: {registry: r.example}\n';
    assert.match(at(`${head}sync:\n  - {repository: quay.io/a\n`), /^f\.yaml:[4-6]:\d+: /);
    assert.match(at(`${head}sync:\n  - repository: quay.io/a\n  - repository: quay.io/a\nkind: Sync\n`), /^f\.yaml:7:1: .*Map keys must be unique/);
    assert.match(at(`${head}sync: []\n---\nkind: Sync\n`), /^f\.yaml:5:1: .*a sync file is one document/);
    assert.doesNotMatch(at(`${head}sync: []\n---\nkind: Sync\n`), /parseAllDocuments/);
    const deep = at(`${'['.repeat(20000)}`);
    assert.match(deep, /^f\.yaml:1:\d+: /);
    assert.ok(deep.split('\n').length <= 25, `${deep.split('\n').length} lines`);
    assert.ok(isNativeYaml(`\uFEFF${head}sync: []\n`));
    assert.equal(at(`\uFEFF${head}sync:\n  - repository: quay.io/a\n`), 'no error');
  });

  it("reads skopeo's sync YAML as skopeo does: empty list = all tags, digests, regex, semver, credentials, tls-verify", () => {
    const text = `registry.example.com:
  images:
    busybox: []
    redis:
      - "7.2"
      - "sha256:${'b'.repeat(64)}"
  images-by-tag-regex:
    nginx: ^1\\.2[0-9]\\.
  images-by-semver:
    alpine: ">= 3.18, < 4"
  credentials:
    username: john
    password: this is a secret
  tls-verify: false
  cert-dir: ${tmpdir()}
  unknown-key: 1
docker.io:
  images:
    busybox: ["1.36"]
`;
    const { registries, entries, warnings } = parseSkopeoYaml(text, 's.yaml');
    assert.deepEqual(registries.get('registry.example.com')?.credentials, { kind: 'inline', username: 'john', password: 'this is a secret' });
    // Masked from the moment the file is read, as the credentials of the flags are.
    assert.equal(safeText('sent: this is a secret'), 'sent: ***');
    forgetSecrets();
    assert.deepEqual(registries.get('registry.example.com')?.tls, { certDir: tmpdir(), verify: false });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /s\.yaml:16:3: .*unknown key "unknown-key".*skopeo ignores it/);
    const byLabel = new Map(entries.map((e) => [`${e.registry}/${e.path}`, e]));
    assert.equal(byLabel.get('registry.example.com/busybox')!.tags, undefined);
    assert.deepEqual(byLabel.get('registry.example.com/redis')!.tags, ['7.2']);
    assert.deepEqual(byLabel.get('registry.example.com/redis')!.digests, [`sha256:${'b'.repeat(64)}`]);
    assert.ok(byLabel.get('registry.example.com/nginx')!.rule!.include[0]!.test('1.25.3'));
    assert.equal(byLabel.get('registry.example.com/alpine')!.rule!.semver!.text, '>= 3.18, < 4');
    assert.deepEqual(byLabel.get('docker.io/library/busybox')!.tags, ['1.36']);
    // What skopeo cannot use it skips, syncing the rest: a bad tag, an upper-case repository, a key with a scheme.
    const skipped = parseSkopeoYaml('quay.io:\n  images:\n    busybox: [":bad"]\n    App: []\n    ok: ["1.0", "bad tag"]\nhttps://quay.io:\n  images: {x: []}\n', 's.yaml');
    assert.deepEqual(skipped.entries.map((e) => [e.path, e.tags]), [['ok', ['1.0']]]);
    assert.match(skipped.warnings.join('\n'), /s\.yaml:3:15: .*not a tag or a digest.*\(skopeo skips it too\)/);
    assert.match(skipped.warnings.join('\n'), /"App" is not a repository name.*\(skopeo skips it too\)/);
    assert.match(skipped.warnings.join('\n'), /s\.yaml:6:1: .*https:\/\/quay\.io.*\(skopeo skips it too\)/);
    // An empty tag item (go-yaml reads it as "", which skopeo cannot use): left out with a warning naming its place.
    const empty = parseSkopeoYaml('quay.io:\n  images:\n    app: ["1.0", ~]\n    tool:\n      - \n', 's.yaml');
    assert.deepEqual(empty.entries.map((e) => [e.path, e.tags]), [['app', ['1.0']]]);
    assert.match(empty.warnings.join('\n'), /s\.yaml:3:\d+: .*app\[1\].*got nothing.*\(skopeo skips it too\)/);
    assert.match(empty.warnings.join('\n'), /tool\[0\].*got nothing/);
    const noCerts = parseSkopeoYaml('quay.io:\n  cert-dir: /nonexistent/certs\n  images: {x: []}\n', 's.yaml');
    assert.deepEqual(noCerts.registries.get('quay.io')?.tls, { certDir: undefined, verify: undefined });
    assert.match(noCerts.warnings.join('\n'), /s\.yaml:\d+:\d+: .*cert-dir: \/nonexistent\/certs is not a directory/);
    assert.throws(() => parseSkopeoYaml('quay.io:\n  tls-verify: maybe\n', 's.yaml'), /s\.yaml:2:15: "quay\.io"\.tls-verify: expected true or false, got "maybe"/);
  });

  it('a key given twice in a skopeo YAML: the last one is taken, as skopeo 1.x takes it, and the earlier one is named', () => {
    // Checked against skopeo 1.9.3: it copied a:v2, over plain HTTP; of a registry key given twice, only the second's images.
    const text = 'quay.io:\n  images:\n    a: [v1]\n    a: [v2]\n  tls-verify: true\n  tls-verify: false\nghcr.io:\n  images:\n    x: [v1]\nghcr.io:\n  images:\n    c: [v3]\n';
    const { registries, entries, warnings } = parseSkopeoYaml(text, 's.yaml');
    assert.deepEqual(entries.map((e) => [e.registry, e.path, e.tags]), [['quay.io', 'a', ['v2']], ['ghcr.io', 'c', ['v3']]]);
    assert.equal(registries.get('quay.io')?.tls?.verify, false);
    assert.equal(warnings.length, 3, warnings.join('\n'));
    assert.match(warnings[0]!, /^s\.yaml:3:5: "quay\.io"\.images\.a: given again at line 4, which is the one used: this one is not \(skopeo ignores it too\)$/);
    assert.match(warnings.join('\n'), /s\.yaml:5:3: "quay\.io"\.tls-verify: given again at line 6/);
    assert.match(warnings.join('\n'), /s\.yaml:7:1: "ghcr\.io": given again at line 10/);
    // A native file still refuses it (see 'syntax errors, missing keys, wrong version, bad values').
  });
});

describe('sync naming', () => {
  const skopeo = (scoped: boolean, appendSuffix = '', namespace = 'ns'): DestinationConfig => ({ host: 'dst:5000', namespace, scheme: 'https', explicitScheme: false, naming: { kind: 'skopeo', scoped, appendSuffix } });
  const push = (keepRegistryHost: boolean, rewrite: Array<{ match: RegExp; replace: string }> = []): DestinationConfig => ({ host: 'dst:5000', namespace: 'mirror', scheme: 'https', explicitScheme: false, naming: { kind: 'push', keepRegistryHost, rewrite } });

  it('skopeo YAML as go-yaml reads it: aliases, merge keys, YAML 1.1 booleans; aliases bounded', () => {
    // The anchor sits under a key skopeo takes for a registry without images, which it skips, as mirror does.
    const text = `x-common: &common
  tls-verify: no
  credentials: {username: ci, password: from-anchor}
reg.example:
  <<: *common
  images:
    team/a: &tags ["1.0", "2.0"]
    team/b: *tags
other.example:
  <<: [*common]
  tls-verify: yes
  images: {x: []}
`;
    const { registries, entries } = parseSkopeoYaml(text, 's.yaml');
    const reg = registries.get('reg.example');
    assert.deepEqual(reg?.tls, { certDir: undefined, verify: false });
    assert.deepEqual(reg?.credentials, { kind: 'inline', username: 'ci', password: 'from-anchor' });
    assert.equal(registries.get('other.example')?.tls?.verify, true, 'what the mapping says itself wins over the merge');
    const byLabel = new Map(entries.map((e) => [`${e.registry}/${e.path}`, e]));
    assert.deepEqual(byLabel.get('reg.example/team/a')?.tags, ['1.0', '2.0']);
    assert.deepEqual(byLabel.get('reg.example/team/b')?.tags, ['1.0', '2.0']);
    forgetSecrets();
    // Aliases are bounded: past 1000, the file is refused.
    const many = ['reg.example:', '  images:', '    team/a: &t ["1.0"]', ...Array.from({ length: 1001 }, (_, i) => `    team/r${i}: *t`)].join('\n');
    assert.throws(() => parseSkopeoYaml(many, 's.yaml'), /s\.yaml:\d+:\d+: .*more than 1000 aliases/);
  });

  it("skopeo: the last path element, or the whole reference with --scoped, then the suffix on the tag", () => {
    assert.equal(destinationFor({ registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }, skopeo(false)).name, 'dst:5000/ns/busybox:1.36');
    assert.equal(destinationFor({ registry: 'quay.io', repository: 'a/b/c', tag: 'v1' }, skopeo(true)).name, 'dst:5000/ns/quay.io/a/b/c:v1');
    assert.equal(destinationFor({ registry: 'quay.io', repository: 'a/b/c', tag: 'v1' }, skopeo(false, '-mirror')).name, 'dst:5000/ns/c:v1-mirror');
    assert.equal(destinationFor({ registry: 'quay.io', repository: 'a/c', digest: `sha256:${'c'.repeat(64)}` }, skopeo(false, '', '')).name, `dst:5000/c@sha256:${'c'.repeat(64)}`);
    assert.throws(() => destinationFor({ registry: 'quay.io', repository: 'a/c', digest: `sha256:${'c'.repeat(64)}` }, skopeo(false, '-x')), /cannot be added .* by digest/);
    assert.throws(() => destinationRepository('127.0.0.1:5000', 'a/b', skopeo(true)), /':' is not allowed in a repository path \(skopeo fails the same way\)/);
  });

  it("push: host dropped (or HOST_PORT kept), path kept, the first matching rewrite rule, under the namespace", () => {
    assert.equal(destinationRepository('gcr.io', 'distroless/static', push(false)), 'mirror/distroless/static');
    assert.equal(destinationRepository('localhost:5000', 'team/app', push(true)), 'mirror/localhost_5000/team/app');
    const rules = [
      { match: compileRegex('^library/(.*)$') as RegExp, replace: 'hub/$1' },
      { match: compileRegex('^(.*)$') as RegExp, replace: 'other/${1}' },
    ];
    assert.equal(destinationRepository('docker.io', 'library/redis', push(false, rules)), 'mirror/hub/redis');
    assert.equal(destinationRepository('quay.io', 'team/app', push(false, rules)), 'mirror/other/team/app');
    assert.throws(() => destinationRepository('quay.io', 'team/app', push(false, [{ match: /app/, replace: 'UPPER' }])), /not a valid repository path/);
  });
});

describe('sync tag selection', () => {
  const TAGS = ['latest', '1.0.0', '1.1.0', 'v1.2', '1.2.1-rc.1', '2.0.0', '2.1', '3.0.0-beta', 'nightly-2024', '1.10.0', '0.9'];
  const select = async (rule: TagRule | undefined, created?: Record<string, number>): Promise<string[]> => {
    const out: string[] = [];
    async function* listed(): AsyncGenerator<string> {
      yield* TAGS;
    }
    for await (const t of selectTags(listed(), rule, created ? async (tag) => created[tag] : undefined)) out.push(t);
    return out;
  };
  const rule = (r: Partial<TagRule>): TagRule => ({ include: [], exclude: [], ...r });
  const range = (t: string) => {
    const r = parseVersionRange(t);
    assert.ok(typeof r !== 'string', String(r));
    return r;
  };

  it('each filter kind gives the hand-computed set', async () => {
    assert.deepEqual(await select(undefined), TAGS);
    assert.deepEqual(await select(rule({ include: [/^1\./] })), ['1.0.0', '1.1.0', '1.2.1-rc.1', '1.10.0']);
    assert.deepEqual(await select(rule({ exclude: [/-/, /^latest$/] })), ['1.0.0', '1.1.0', 'v1.2', '2.0.0', '2.1', '1.10.0', '0.9']);
    assert.deepEqual(await select(rule({ semver: range('>=1.1, <2.1') })), ['1.1.0', 'v1.2', '2.0.0', '1.10.0']);
    assert.deepEqual(await select(rule({ semver: range('>=1.2.1-0 <1.3') })), ['1.2.1-rc.1']);
    assert.deepEqual(await select(rule({ newest: { count: 3, by: 'semver' } })), ['3.0.0-beta', '2.1', '2.0.0']);
    assert.deepEqual(await select(rule({ exclude: [/-/], newest: { count: 2, by: 'semver' } })), ['2.1', '2.0.0']);
    const created = { latest: 50, '1.0.0': 10, '2.0.0': 40, nightly: 60, '0.9': 5 };
    assert.deepEqual(await select(rule({ newest: { count: 2, by: 'created' } }), created), ['latest', '2.0.0']);
    // A skopeo images-by-tag-regex is unanchored, as Go's MatchString.
    assert.deepEqual(await select(rule({ include: [compileRegex('night') as RegExp] })), ['nightly-2024']);
    assert.deepEqual(await select(rule({ include: [compileRegex('(?i)LATEST') as RegExp] })), ['latest']);
  });

  it("patterns run as Go's RE2 would: one that backtracks without end still ends at once; (?i), (?P<name>), \\z", () => {
    const tag = `${'a'.repeat(26)}-`; // seconds for a backtracking engine, 2^n steps; the fallback takes none
    for (const source of ['^(a+)+$', '(?s)^(a|aa)+$', '(?i)^(A+)+$']) {
      const re = compileRegex(source) as RegExp;
      const t0 = Date.now();
      assert.equal(re.test(tag), false, source);
      assert.ok(Date.now() - t0 < 2000, `${source}: ${Date.now() - t0} ms`);
    }
    const folded = compileRegex('(?i)^V\\d+\\.X$') as RegExp;
    assert.ok(folded.test('v1.x') && folded.test('V22.X') && !folded.test('v1x') && !folded.test('w1.x'));
    assert.ok((compileRegex('(?i)^[A-C]\\W') as RegExp).test('b-'), 'class ranges fold, escapes keep their meaning');
    assert.ok((compileRegex('^(?P<major>\\d+)\\.') as RegExp).test('12.3'));
    assert.ok((compileRegex('rc\\z') as RegExp).test('1.0-rc') && !(compileRegex('rc\\z') as RegExp).test('1.0-rc1'));
    // What skopeo matched where JavaScript's reading matched nothing (found by probing).
    const go = (source: string, tags: string[]): string[] => tags.filter((t) => (compileRegex(source) as RegExp).test(t));
    assert.deepEqual(go('^v[[:digit:]]+\\.0', ['v1.0', 'v2.0.0', 'va.0']), ['v1.0', 'v2.0.0']);
    assert.deepEqual(go('^[^[:alpha:]_]', ['1a', 'a1', '_x', '-y']), ['1a', '-y']);
    assert.deepEqual(go('^\\Qv1.1\\E', ['v1.10', 'v1x1']), ['v1.10']);
    assert.deepEqual(go('^\\pL+$', ['abc', 'ab1']), ['abc']);
    assert.deepEqual(go('^[]a]+$', [']a', 'b']), [']a']);
    // What RE2 does not take, skopeo refuses (and skips the entry): so here.
    assert.match(compileRegex('^v(?!2)') as string, /not a regular expression Go's regexp \(RE2\) takes.*lookaround/);
    assert.match(compileRegex('(a)\\1') as string, /backreference/);
  });
});

describe('sync shards and durations', () => {
  it('every repository is in exactly one shard, the same on every run', () => {
    const repos = Array.from({ length: 500 }, (_, i) => `mirror/team-${i % 37}/app-${i}`);
    for (const n of [1, 2, 3, 7]) {
      const counts = Array.from({ length: n }, () => 0);
      for (const r of repos) {
        const hits = Array.from({ length: n }, (_, i) => inShard(r, { index: i, count: n })).filter(Boolean).length;
        assert.equal(hits, 1);
        counts[shardOf(r, n)]!++;
      }
      for (const c of counts) assert.ok(c > repos.length / n / 2, `balanced: ${counts}`);
    }
    assert.equal(shardOf('mirror/library/busybox', 4), shardOf('mirror/library/busybox', 4));
    assert.deepEqual(parseShard('2/5'), { index: 2, count: 5 });
    assert.throws(() => parseShard('5/5'), /0 <= I < N/);
    assert.deepEqual(shardFromEnv(3, { JOB_COMPLETION_INDEX: '1' }), { index: 1, count: 3 });
    assert.throws(() => shardFromEnv(3, {}), /JOB_COMPLETION_INDEX/);
  });

  it('durations', () => {
    assert.equal(parseDuration('90s', 'x'), 90_000);
    assert.equal(parseDuration('1h30m', 'x'), 5_400_000);
    assert.equal(parseDuration('2', 'x'), 2000);
    assert.equal(parseDuration('250ms', 'x'), 250);
    assert.throws(() => parseDuration('soon', '--max-duration'), /--max-duration/);
  });
});

describe('sync lock', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'sync-lock-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a second taker fails at once (LOCKED, exit 8) naming the holder; released, it can be taken', async () => {
    const path = join(dir, 'l.lock');
    const first = await acquireLock(path);
    const owner = JSON.parse(readFileSync(path, 'utf8')) as { pid: number; host: string };
    assert.deepEqual([owner.pid, owner.host], [process.pid, hostname()]);
    await assert.rejects(acquireLock(path), (e: Error & { exitCode?: number }) => e.exitCode === 8 && e.message.includes(`pid ${process.pid}`));
    const t0 = Date.now();
    await assert.rejects(acquireLock(path, { waitMs: 700 }), /did not finish within --wait-lock/);
    assert.ok(Date.now() - t0 >= 650);
    setTimeout(() => void first.release(), 300);
    const second = await acquireLock(path, { waitMs: 5000 });
    await second.release();
  });

  it('a lock of a dead process of this host is taken over; a reused pid is told apart; another host is never taken over', async () => {
    const path = join(dir, 'l.lock');
    const dead = await new Promise<number>((resolve) => {
      const c = spawn(process.execPath, ['-e', '0']);
      c.once('exit', () => resolve(c.pid!));
    });
    writeFileSync(path, JSON.stringify({ pid: dead, host: hostname(), started: '2020-01-01T00:00:00Z', token: 'x' }));
    const took = await acquireLock(path);
    assert.equal(took.tookOver?.pid, dead);
    await took.release();
    // Our own pid, but another process start time: a pid reused after a restart.
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), started: '2020', processStart: `${processStartOf(process.pid)}0`, token: 'y' }));
    const reused = await acquireLock(path);
    assert.equal(reused.tookOver?.pid, process.pid);
    await reused.release();
    writeFileSync(path, JSON.stringify({ pid: dead, host: 'other-host', started: '2020', token: 'z' }));
    await assert.rejects(acquireLock(path), (e: MirrorError) => /pid \d+ on other-host.*a lock of another host is never taken over/.test(e.describe()));
  });

  it('a link planted at the lock path is refused at once, never followed; a takeover that cannot happen ends within --wait-lock', async () => {
    const path = join(dir, 'planted.lock');
    symlinkSync(join(dir, 'nowhere'), path);
    let t0 = Date.now();
    await assert.rejects(acquireLock(path, { waitMs: 60_000 }), (e: MirrorError) => e.code === 'BAD_INPUT' && /planted\.lock: a symbolic link, which a sync never writes/.test(e.message));
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    rmSync(path);
    // A stale lock whose takeover marker cannot be made or removed (a directory in its place).
    const dead = await new Promise<number>((resolve) => {
      const c = spawn(process.execPath, ['-e', '0']);
      c.once('exit', () => resolve(c.pid!));
    });
    writeFileSync(path, JSON.stringify({ pid: dead, host: hostname(), started: '2020', token: 'w' }));
    mkdirSync(`${path}.takeover`);
    t0 = Date.now();
    await assert.rejects(acquireLock(path, { waitMs: 700 }), (e: MirrorError) => e.code === 'LOCKED' && /is gone, but another run is taking it over/.test(e.message));
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });
});

describe('sync credentials by reference', () => {
  afterEach(() => forgetSecrets());

  it('a credential read from the sync file is masked in every message from then on (file, env)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mirror-cred-'));
    try {
      writeFileSync(join(dir, 'cred'), 'alice:file-S3cret-pw\n', { mode: 0o600 });
      const events = (): void => undefined;
      const fromFile = await referenceResolver({ kind: 'file', path: join(dir, 'cred') }, { events }).resolve('r.example');
      assert.deepEqual(fromFile.credential, { kind: 'basic', username: 'alice', password: 'file-S3cret-pw' });
      const basic = Buffer.from('alice:file-S3cret-pw').toString('base64');
      assert.equal(safeText(`echo: file-S3cret-pw Basic ${basic}`), 'echo: *** Basic ***');
      const env = { SYNC_U: 'bob', SYNC_P: 'env-S3cret-pw' };
      await referenceResolver({ kind: 'env', username: 'SYNC_U', password: 'SYNC_P' }, { env, events }).resolve('r.example');
      assert.equal(safeText('password=env-S3cret-pw'), 'password=***');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
