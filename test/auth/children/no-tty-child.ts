/** Resolves a credential with the default chain and no terminal; prints the outcome as JSON on stdout. */
import { createCredentialResolver } from '../../../src/auth/chain.js';
import { isMirrorError } from '../../../src/errors/index.js';

const host = process.argv[2] ?? 'reg.example.com:5000';
const started = Date.now();
try {
  const r = createCredentialResolver({ needCredential: true });
  const answer = await r.resolve(host);
  process.stdout.write(JSON.stringify({ ok: true, source: answer.source, ms: Date.now() - started }));
} catch (e) {
  process.stdout.write(
    JSON.stringify({ ok: false, code: isMirrorError(e) ? e.code : 'OTHER', message: isMirrorError(e) ? e.message : String(e), ms: Date.now() - started }),
  );
}
process.exit(0);
