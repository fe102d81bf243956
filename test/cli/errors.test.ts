/** The one error style: oclif's parse errors rewritten into `WHAT; FIX`, with the closest flag or command suggested. */
import assert from 'node:assert/strict';
import { describeCliError, suggest } from '../../src/cli/errors.js';
import { MirrorError } from '../../src/errors/index.js';

/** oclifError builds an error shaped as oclif's (its class name, `oclif.exit`, extra fields). */
function oclifError(kind: string, message: string, extra: Record<string, unknown> = {}, exit = 2): Error {
  const named = { [kind]: class extends Error {} }[kind]!;
  return Object.assign(new named(message), { oclif: { exit } }, extra);
}

const PUSH_FLAGS = ['source', 'images', 's', 'private-registry', 'r', 'dry-run', 'jobs', 'j', 'report', 'username', 'password', 'password-stdin', 'cacert', 'json', 'debug'];
const ctx = { commandId: 'push', flagNames: PUSH_FLAGS, usage: 'mirror push --source BUNDLE --private-registry HOST', commandIds: ['push', 'login', 'logout', 'inspect', 'version', 'help'] };

describe('cli/errors', () => {
  it('suggests the closest flag or command for a typo, and nothing for a stranger', () => {
    assert.equal(suggest('privat-registry', PUSH_FLAGS), 'private-registry');
    assert.equal(suggest('private-regsitry', PUSH_FLAGS), 'private-registry');
    assert.equal(suggest('sorce', PUSH_FLAGS), 'source');
    assert.equal(suggest('dryrun', PUSH_FLAGS), 'dry-run');
    assert.equal(suggest('cacerts', PUSH_FLAGS), 'cacert');
    assert.equal(suggest('pusj', ctx.commandIds), 'push');
    assert.equal(suggest('inpsect', ctx.commandIds), 'inspect');
    assert.equal(suggest('zebra', PUSH_FLAGS), undefined);
    assert.equal(suggest('x', PUSH_FLAGS), undefined);
  });

  it('rewrites each kind of oclif parse error into one line with a fix, exit 2', () => {
    const cases: Array<[Error, RegExp]> = [
      [oclifError('NonExistentFlagsError', 'Nonexistent flag: --privat-registry\nSee more help with --help', { flags: ['--privat-registry'] }), /^unknown flag --privat-registry; did you mean --private-registry\?$/],
      [oclifError('NonExistentFlagsError', 'Nonexistent flag: --zebra', { flags: ['--zebra'] }), /^unknown flag --zebra; see mirror push --help$/],
      [oclifError('FailedFlagValidationError', 'The following errors occurred:\n  \u001b[2mMissing required flag source\nMissing required flag private-registry\u001b[22m\nSee more help with --help'), /^missing --source and --private-registry; usage: mirror push --source BUNDLE --private-registry HOST$/],
      [oclifError('FailedFlagValidationError', 'The following error occurred:\n  All of the following must be provided when using --cert: --key'), /^--cert needs --key; see mirror push --help$/],
      [oclifError('FlagInvalidOptionError', 'Expected --layer-compression=foo to be one of: gzip, zstd, none\nSee more help with --help'), /^--layer-compression must be one of gzip, zstd, none \(got "foo"\)$/],
      [oclifError('CLIError', 'Parsing --jobs \n\tExpected an integer less than or equal to 64 but received: 100\nSee more help with --help'), /^--jobs must be a whole number <= 64 \(got "100"\)$/],
      [oclifError('CLIError', 'Parsing --jobs \n\tExpected an integer but received: many\nSee more help with --help'), /^--jobs must be a whole number \(got "many"\)$/],
      [oclifError('CLIError', 'Flag --private-registry expects a value'), /^--private-registry needs a value; see mirror push --help$/],
      [oclifError('UnexpectedArgsError', 'Unexpected arguments: a, b\nSee more help with --help', { args: ['a', 'b'] }), /^unexpected arguments "a", "b"; usage: mirror push/],
      [oclifError('RequiredArgsError', 'Missing 1 required arg:\nhost  Registry HOST[:PORT].\nSee more help with --help', { args: [{ name: 'host' }] }), /^missing HOST; usage: /],
      [oclifError('CLIError', 'command pusj not found'), /^unknown command "pusj"; did you mean "mirror push"\?$/],
      [oclifError('CLIError', 'command zebra:x not found'), /^unknown command "zebra"; see mirror --help for the commands$/],
      [oclifError('CLIError', 'command version:extra not found'), /^unexpected argument "extra"; see mirror version --help$/],
    ];
    for (const [err, want] of cases) {
      const d = describeCliError(err, ctx);
      assert.equal(d.exitCode, 2, err.message);
      assert.equal(d.code, 'USAGE');
      assert.match(d.line, want);
      assert.ok(!d.line.includes('\n') && !d.line.includes('\u001b'), d.line);
      assert.ok(d.line.length < 200, `${d.line.length} characters: ${d.line}`);
    }
  });

  it('keeps a MirrorError its own code and message; anything else is an internal error on one line', () => {
    const e = new MirrorError('TLS', 'TLS: unknown CA', { hint: 'use --cacert FILE' });
    assert.deepEqual(describeCliError(e, ctx), { exitCode: 5, code: 'TLS', line: 'TLS: unknown CA; use --cacert FILE' });
    const other = describeCliError(new TypeError('boom\n  at somewhere'), ctx);
    assert.equal(other.exitCode, 1);
    assert.equal(other.line, 'internal error: boom');
  });
});
