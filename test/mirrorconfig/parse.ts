/**
 * Independent readers for the generated files: Python's tomllib (TOML 1.0) and PyYAML (YAML 1.1, as go-yaml v2
 * in RKE2/K3s reads it), run as child processes, so a file is checked by a parser that did not write it.
 */
import { existsSync } from 'node:fs';
import { run } from '../helpers/proc.js';

/** PYTHON is the interpreter: Debian's (it has tomllib, and python3-yaml), else the first python3 on PATH. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** parseToml reads TOML text with tomllib and gives the value as JSON. */
export async function parseToml(text: string): Promise<Record<string, unknown>> {
  const out = await run(PYTHON, ['-c', 'import sys, json, tomllib; print(json.dumps(tomllib.loads(sys.stdin.read())))'], { input: text, timeoutMs: 20_000 });
  return JSON.parse(out) as Record<string, unknown>;
}

/** parseYamlDocuments reads a YAML stream with PyYAML's safe loader and gives every document. */
export async function parseYamlDocuments(text: string): Promise<unknown[]> {
  const out = await run(PYTHON, ['-c', 'import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin.read()))))'], { input: text, timeoutMs: 20_000 });
  return JSON.parse(out) as unknown[];
}

/** parseYaml reads one YAML document. */
export async function parseYaml(text: string): Promise<Record<string, unknown>> {
  const docs = await parseYamlDocuments(text);
  if (docs.length !== 1) throw new Error(`expected one YAML document, got ${docs.length}`);
  return docs[0] as Record<string, unknown>;
}
