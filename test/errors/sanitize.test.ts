/**
 * The one scrubber: registered secrets (as is, JSON-escaped, URL-encoded, base64 `user:password`) are taken out of
 * any message, URL credentials too, and control characters are written visibly; MirrorError applies it when a
 * message is made and described.
 */
import assert from 'node:assert/strict';
import { registerCredentialSecrets } from '../../src/auth/secrets.js';
import { errorMessage, MirrorError } from '../../src/errors/index.js';
import { escapeControl, forgetSecrets, registerSecret, safeText, scrubSecrets } from '../../src/errors/sanitize.js';

// The registry of live secrets is per process, as in a real run; between tests it is emptied, so a password one
// test registers (`b`, `tag`) never masks words in the messages another test checks. A root hook: every file.
afterEach(() => forgetSecrets());

describe('errors/sanitize', () => {
  it('takes a registered secret out of a server message, in every form a server may echo it', () => {
    const password = 'hun"ter\\2/x y';
    registerSecret(password);
    const body = JSON.stringify({ errors: [{ message: `invalid password ${password}` }] });
    assert.ok(body.includes('hun\\"ter\\\\2'), 'the body holds the JSON-escaped form');
    for (const text of [`invalid password ${password}`, body, `GET /token?password=${encodeURIComponent(password)}`]) {
      const out = scrubSecrets(text);
      assert.ok(!out.includes('hun'), out);
      assert.ok(out.includes('***'), out);
    }
  });

  it('a basic credential registers its password and its base64 user:password; tokens as they are', () => {
    registerCredentialSecrets({ kind: 'basic', username: 'robot', password: 'S3cret-pw' });
    registerCredentialSecrets({ kind: 'identity-token', token: 'refresh-abcdef' });
    registerCredentialSecrets({ kind: 'registry-token', token: 'bearer-123456' });
    const b64 = Buffer.from('robot:S3cret-pw').toString('base64');
    const out = scrubSecrets(`Basic ${b64}; pw S3cret-pw; refresh-abcdef; bearer-123456; user robot`);
    assert.equal(out, 'Basic ***; pw ***; ***; ***; user robot');
  });

  it('a short secret is masked only where it stands alone; one character is not remembered', () => {
    registerSecret('pw', 'x');
    assert.equal(scrubSecrets('the pw is pw, a pwd is not'), 'the *** is ***, a pwd is not');
    assert.equal(scrubSecrets('x marks'), 'x marks');
  });

  it("a password shorter than a token is masked where it stands alone, never inside the tool's own words", () => {
    registerSecret('pass', 'secret12');
    const out = scrubSecrets('the credentials from --username/--password were refused (user:pass, "secret12", p=secret12&x); check the password');
    assert.equal(out, 'the credentials from --username/--password were refused (user:***, "***", p=***&x); check the password');
    // A secret as long as a token is taken out wherever it occurs, inside a word too.
    registerSecret('tok-0123456789abcdef');
    assert.equal(scrubSecrets('Bearer tok-0123456789abcdef, xtok-0123456789abcdefx'), 'Bearer ***, x***x');
  });

  it('a longer secret that contains a shorter one is masked whole', () => {
    registerSecret('abcd', 'abcdefgh');
    assert.equal(scrubSecrets('abcdefgh abcd'), '*** ***');
  });

  it('escapes C0, DEL, C1, bidi controls and line separators, and keeps newlines only when asked', () => {
    const evil = 'evil\u001b[2J\r\u0007\u0008\u007f\u009b31m\u202eabc\u2066\u2028end\n';
    assert.equal(escapeControl(evil), 'evil\\x1b[2J\\x0d\\x07\\x08\\u007f\\u009b31m\\u202eabc\\u2066\\u2028end\\x0a');
    assert.equal(escapeControl('a\tb\nc\rd', { multiline: true }), 'a\tb\nc\\x0dd');
    assert.equal(escapeControl('plain text, ünïcödé, 日本'), 'plain text, ünïcödé, 日本');
  });

  it('removes credentials written into URLs', () => {
    assert.equal(safeText('Unexpected argument: http://user:hunter2@host:5000/ns'), 'Unexpected argument: http://***@host:5000/ns');
    assert.equal(safeText('see https://ghp_token@github.com/x and https://host/y'), 'see https://***@github.com/x and https://host/y');
  });

  it('MirrorError: the message is scrubbed and escaped when made, its description when shown', () => {
    registerSecret('hunter2');
    const e = new MirrorError('AUTH', 'token server said: invalid password hunter2\r\u001b[2K', { image: 'evil\u001b[31m', hint: 'not hunter2' });
    assert.equal(e.message, 'token server said: invalid password ***\\x0d\\x1b[2K');
    assert.equal(e.describe(), 'token server said: invalid password ***\\x0d\\x1b[2K (image evil\\x1b[31m); not ***');
    registerSecret('learned-later');
    const late = new MirrorError('REGISTRY', 'x', { hint: 'learned-later' });
    assert.equal(late.describe(), 'x; ***');
    assert.equal(errorMessage(new Error('plain hunter2\u009b')), 'plain ***\\u009b');
  });
});
