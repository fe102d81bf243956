/**
 * The module graph of src/: no import cycle between modules, and the folders keep their direction (auth is below
 * registry: the registry client asks auth for credentials, never the other way round). Read from the sources, so a
 * new cycle fails here rather than as an undefined import at start-up.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** SRC is src/ in the source tree (this file runs from dist/test/). */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** FORBIDDEN lists folder pairs [from, to] where `from` must not import `to`. */
const FORBIDDEN: Array<[string, string]> = [
  ['auth', 'registry'],
  ['registry', 'copy'],
  ['registry', 'transport'],
  ['net', 'registry'],
  ['oci', 'registry'],
];

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** importsOf gives the relative modules a file imports at run time (type-only imports are erased: left out). */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?[^;]*?\s+from\s+'(\.[^']+)'/gms;
  for (const m of text.matchAll(re)) {
    if (m[2] !== undefined) continue;
    out.push(resolve(dirname(file), m[3]!.replace(/\.js$/, '.ts')));
  }
  for (const m of text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g)) out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  return out;
}

describe('src/ module graph', () => {
  let graph: Map<string, string[]>;
  before(async () => {
    graph = new Map();
    for (const f of await sourceFiles(SRC)) graph.set(f, importsOf(f, await readFile(f, 'utf8')));
  });

  it('reads the imports it checks (the graph is not empty, every relative import resolves to a file)', () => {
    assert.ok(graph.size > 50, `${graph.size} files`);
    const missing = [...graph].flatMap(([f, deps]) => deps.filter((d) => !graph.has(d) && !d.endsWith('.json')).map((d) => `${relative(SRC, f)} -> ${relative(SRC, d)}`));
    assert.deepEqual(missing, []);
  });

  it('has no import cycle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      const s = state.get(f);
      if (s === 'done') return;
      if (s === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(' > '));
        return;
      }
      state.set(f, 'open');
      for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    assert.deepEqual(cycles, []);
  });

  it('keeps the folders in their order', () => {
    const wrong: string[] = [];
    for (const [f, deps] of graph) {
      const from = relative(SRC, f).split('/')[0];
      for (const d of deps) {
        const to = relative(SRC, d).split('/')[0];
        if (FORBIDDEN.some(([a, b]) => a === from && b === to)) wrong.push(`${relative(SRC, f)} -> ${relative(SRC, d)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});
