/**
 * The TOML and YAML writers behind every generated file: any string comes back as itself through independent
 * parsers (tomllib, PyYAML in YAML 1.1 mode as go-yaml v2 reads it), keywords and numbers stay strings, and nothing
 * taken from input can end a header comment.
 */
import assert from 'node:assert/strict';
import { commentBlock, tomlArray, tomlKey, tomlString, yamlDocument, yamlString } from '../../src/mirrorconfig/text.js';
import { parseToml, parseYaml, parseYamlDocuments } from './parse.js';

/** HOSTILE are strings a path, password or name could hold. */
const HOSTILE = [
  '',
  'plain',
  'with space',
  ' leading',
  'trailing ',
  'quote " and \\ backslash',
  "single ' quote",
  'new\nline',
  'cr\r\nlf',
  'tab\there',
  'nul\u0000and\u0001\u001f',
  'del\u007f c1\u0085\u009f',
  'line sep\u2028para\u2029bom\ufeff',
  'ünïcödé ✓ 𝄞',
  '# not a comment',
  'a: b',
  '- item',
  '[x]',
  '{x}',
  '*alias',
  '&anchor',
  '!tag',
  '%directive',
  '@at',
  '`tick',
  '|',
  '>',
  '?',
  '---',
  '...',
  '"quoted"',
  '${HOME} $1 ^(.*)$',
  '127.0.0.1:5000',
  '/abs/path/ca.crt',
  'C:\\Users\\x',
];

/** KEYWORDS are plain scalars YAML 1.1 or 1.2 reads as non-strings. */
const KEYWORDS = ['yes', 'No', 'ON', 'off', 'y', 'n', 'true', 'False', 'null', 'Null', '~', '1', '1.0', '010', '0x1F', '1e3', '.inf', '-.Inf', '.nan', '12:30:00', '2024-01-01', '+1', '-1'];

describe('mirrorconfig text writers', () => {
  it('TOML basic strings read back as the same string (tomllib)', async () => {
    const keys = HOSTILE.map((_, i) => `k${i}`);
    const text = HOSTILE.map((s, i) => `${keys[i]} = ${tomlString(s)}`).join('\n');
    const parsed = await parseToml(text);
    HOSTILE.forEach((s, i) => assert.equal(parsed[keys[i]!], s, `string ${JSON.stringify(s)}`));
  });

  it('TOML keys and arrays: quoted when needed, nested arrays of strings', async () => {
    assert.equal(tomlKey('bare_key-1'), 'bare_key-1');
    assert.equal(tomlKey('https://h:5000/v2/ns'), '"https://h:5000/v2/ns"');
    const parsed = await parseToml(`[host.${tomlKey('https://h:5000/v2/ns')}]\nclient = ${tomlArray([['a "b"', 'c\\d']])}\ncaps = ${tomlArray(['pull', 'resolve'])}\n`);
    assert.deepEqual(parsed, { host: { 'https://h:5000/v2/ns': { client: [['a "b"', 'c\\d']], caps: ['pull', 'resolve'] } } });
  });

  it('YAML scalars read back as the same string (PyYAML, YAML 1.1), keywords and numbers included', async () => {
    const all = [...HOSTILE, ...KEYWORDS];
    const doc = Object.fromEntries(all.map((s, i) => [`k${i}`, s]));
    const parsed = await parseYaml(yamlDocument(doc));
    all.forEach((s, i) => assert.equal(parsed[`k${i}`], s, `string ${JSON.stringify(s)} as ${yamlString(s)}`));
    for (const k of KEYWORDS) assert.match(yamlString(k), /^"/, `${k} is quoted`);
    assert.equal(yamlString('gcr.io'), 'gcr.io');
    assert.equal(yamlString('config.openshift.io/v1'), 'config.openshift.io/v1');
  });

  it('YAML keys, nested maps, lists of maps, empty values, booleans, literal blocks', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n\nabc==\n-----END CERTIFICATE-----\n';
    const doc = {
      '127.0.0.1:5000': { auth: { username: 'u', password: 'p: "x"' }, tls: { insecure_skip_verify: true } },
      list: [{ source: 'gcr.io', mirrors: ['h:5000/ns', 'other'] }, 'scalar', false],
      empty: [],
      none: {},
      left: undefined,
      pem,
      'yes': 'on',
    };
    const text = yamlDocument(doc);
    assert.match(text, /^pem: \|$/m, 'a PEM goes in a literal block');
    const parsed = await parseYaml(text);
    assert.deepEqual(parsed, {
      '127.0.0.1:5000': { auth: { username: 'u', password: 'p: "x"' }, tls: { insecure_skip_verify: true } },
      list: [{ source: 'gcr.io', mirrors: ['h:5000/ns', 'other'] }, 'scalar', false],
      empty: [],
      none: {},
      pem,
      yes: 'on',
    });
    // Strings that cannot be literal blocks are quoted instead, and still read back.
    const odd = { a: 'two\n\n', b: ' lead\nx\n', c: 'no newline at end\nx', d: 'ctrl\u0001\nx\n' };
    assert.deepEqual(await parseYaml(yamlDocument(odd)), odd);
  });

  it('header comments stay comments whatever they quote', async () => {
    const block = commentBlock(['from report evil\nkey: value\r\n--- ', `  ${'x'.repeat(10)}`, 'word '.repeat(60)]);
    for (const line of block.split('\n').filter((l) => l !== '')) assert.match(line, /^#/);
    for (const line of block.split('\n')) assert.ok(line.length <= 130, `short line: ${line}`);
    const docs = await parseYamlDocuments(`${block}a: b\n`);
    assert.deepEqual(docs, [{ a: 'b' }]);
    assert.deepEqual(await parseToml(`${block}a = "b"\n`), { a: 'b' });
  });
});
