/**
 * The plan's lookahead: repositories are listed ahead of the one whose jobs are handed out (PLAN_LOOKAHEAD beyond it at
 * once), jobs still come out repository after repository in the config's order, a failure of a repository listed
 * ahead is reported in its turn, and a plan stopped early closes the listings it started.
 */
import assert from 'node:assert/strict';
import type { SyncConfig, SyncEntry } from '../../src/sync/config/model.js';
import { PLAN_LOOKAHEAD, planJobs, type PlanProblem, type SourceConnection } from '../../src/sync/plan.js';
import type { ImageSource } from '../../src/transport/types.js';

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** fakeSource lists `tags` tags per repository after `ms`, counting listings at once; `broken` repositories fail. */
function fakeSource(options: { tags: number; ms: number; broken?: Set<string> }): { source: ImageSource; stats: { active: number; max: number; started: string[]; finished: string[] } } {
  const stats = { active: 0, max: 0, started: [] as string[], finished: [] as string[] };
  const source = {
    registry: 'src.example',
    tags: (repository: string) =>
      (async function* listed(): AsyncGenerator<string, void, undefined> {
        stats.started.push(repository);
        stats.active++;
        stats.max = Math.max(stats.max, stats.active);
        try {
          await delay(options.ms);
          if (options.broken?.has(repository)) throw new Error(`${repository} is broken`);
        } finally {
          stats.active--;
        }
        stats.finished.push(repository);
        for (let i = 0; i < options.tags; i++) yield `t${i}`;
      })(),
  } as unknown as ImageSource;
  return { source, stats };
}

function config(repos: string[]): SyncConfig {
  const entries: SyncEntry[] = repos.map((r) => ({ origin: `test:${r}`, label: r, registry: 'src.example', kind: 'repository', path: r, digests: [] }));
  return {
    format: 'skopeo',
    file: 'test',
    defaults: {},
    registries: new Map(),
    destination: { host: 'dst.example', namespace: 'ns', scheme: 'https', explicitScheme: false, naming: { kind: 'skopeo', scoped: false, appendSuffix: '' } },
    entries,
    warnings: [],
  };
}

describe('sync plan: listing ahead', () => {
  const repos = Array.from({ length: 20 }, (_, i) => `team/repo-${String(i).padStart(2, '0')}`);

  it('lists PLAN_LOOKAHEAD repositories ahead of the current one and hands jobs out in order', async () => {
    const { source, stats } = fakeSource({ tags: 3, ms: 40 });
    const conn: SourceConnection = { source, catalog: { repositories: () => (async function* none() {})() } };
    const out: string[] = [];
    const t0 = Date.now();
    for await (const job of planJobs({ config: config(repos), connect: async () => conn, onProblem: () => assert.fail('no problem expected'), events: () => {} })) {
      out.push(`${job.image.repository}:${job.image.tag ?? ''}`);
    }
    const ms = Date.now() - t0;
    assert.deepEqual(out, repos.flatMap((r) => ['t0', 't1', 't2'].map((t) => `${r}:${t}`)));
    assert.equal(stats.max, PLAN_LOOKAHEAD + 1, 'the repository handed out and those listed ahead of it');
    // 20 listings of 40 ms one after the other take 800 ms; nine at a time about 120 ms.
    assert.ok(ms < 600, `listed ahead (${ms} ms)`);
  });

  it('a repository listed ahead that fails is reported, the others are planned', async () => {
    const broken = new Set([repos[3]!]);
    const { source } = fakeSource({ tags: 2, ms: 5, broken });
    const conn: SourceConnection = { source, catalog: { repositories: () => (async function* none() {})() } };
    const problems: PlanProblem[] = [];
    const out: string[] = [];
    for await (const job of planJobs({ config: config(repos), connect: async () => conn, onProblem: (p) => problems.push(p), events: () => {} })) {
      out.push(job.image.repository);
    }
    assert.equal(out.length, (repos.length - 1) * 2);
    assert.ok(!out.includes(repos[3]!));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.repository, repos[3]);
    assert.match(problems[0]!.error.message, /cannot list the tags of src\.example\/team\/repo-03/);
  });

  it('a plan stopped early starts no more listings and leaves none running', async () => {
    const { source, stats } = fakeSource({ tags: 3, ms: 10 });
    const conn: SourceConnection = { source, catalog: { repositories: () => (async function* none() {})() } };
    let n = 0;
    for await (const _ of planJobs({ config: config(repos), connect: async () => conn, onProblem: () => {}, events: () => {} })) {
      if (++n === 2) break;
    }
    await delay(50);
    assert.equal(stats.active, 0);
    assert.ok(stats.started.length <= 2 + PLAN_LOOKAHEAD, `started ${stats.started.length}`);
    const later = stats.started.length;
    await delay(50);
    assert.equal(stats.started.length, later);
  });
});
