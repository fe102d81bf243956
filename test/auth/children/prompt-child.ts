/** Runs the credential prompt on the real terminal (under `script`) and writes what it got to the file in argv[2]. */
import { writeFileSync } from 'node:fs';
import { promptCredential } from '../../../src/auth/prompt.js';
import { isMirrorError } from '../../../src/errors/index.js';

const out = process.argv[2];
const host = process.argv[3] ?? 'reg.example.com:5000';
if (!out) throw new Error('usage: prompt-child OUT [HOST]');
try {
  const answer = await promptCredential({ host });
  writeFileSync(out, JSON.stringify({ ok: true, answer: answer ?? null, stdinIsTTY: process.stdin.isTTY === true }));
} catch (e) {
  writeFileSync(out, JSON.stringify({ ok: false, code: isMirrorError(e) ? e.code : 'OTHER', message: String(e) }));
}
process.exit(0);
