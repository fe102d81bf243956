/**
 * The one style of every error the tool prints: `mirror: error: WHAT; FIX`, one line, with the exit code from the
 * table in `--help`. oclif's own parse errors (unknown flags, missing values, bad options, unknown commands) are
 * rewritten into that style here, with the closest flag or command suggested for a typo.
 */
import { closest, distance } from 'fastest-levenshtein';
import { errorMessage, ExitCode, isMirrorError } from '../errors/index.js';
import { safeBlock, safeLine } from './safe-output.js';

/** CliErrorLine is what to print and return for an error. */
export interface CliErrorLine {
  /** The process exit code. */
  exitCode: number;
  /** The stable code for `--json` (`USAGE`, `BAD_INPUT`, ...). */
  code: string;
  /** One line, without the `mirror: error: ` prefix. */
  line: string;
}

/** CliErrorContext is what the rewriting knows about the command line. */
export interface CliErrorContext {
  /** The command that ran (`push`), if one was found. */
  commandId?: string | undefined;
  /** Every flag spelling of that command, without dashes (`source`, `images`, `s`). */
  flagNames?: readonly string[] | undefined;
  /** The command's shortest correct form, shown for missing arguments (`mirror push --source BUNDLE ...`). */
  usage?: string | undefined;
  /** Every command id, for a mistyped command. */
  commandIds?: readonly string[] | undefined;
}

/** ERROR_PREFIX starts every error line. */
export const ERROR_PREFIX = 'mirror: error: ';

// oclif colours some parts of its messages on a terminal.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/** suggest gives the closest of `candidates` to `typed`, when it is close enough to be a typo. */
export function suggest(typed: string, candidates: readonly string[]): string | undefined {
  const pool = candidates.filter((c) => c !== typed && c.length > 1);
  if (pool.length === 0 || typed === '') return undefined;
  const best = closest(typed, [...pool]);
  // A typo: a few edits, and fewer than a third of the word; or the typed text is a prefix of exactly one name.
  const d = distance(typed, best);
  if (d <= Math.max(1, Math.min(3, Math.floor(best.length / 3)))) return best;
  const prefixed = pool.filter((c) => c.startsWith(typed));
  return typed.length >= 3 && prefixed.length === 1 ? prefixed[0] : undefined;
}

/** helpFix is the fix shown when nothing better is known. */
function helpFix(ctx: CliErrorContext): string {
  return `see mirror ${ctx.commandId ? `${ctx.commandId} ` : ''}--help`;
}

function joinAnd(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** oclifText gives an oclif message without colours, its "See more help" line, and line breaks. */
function oclifText(message: string): string {
  return message
    .replace(ANSI, '')
    .replace(/\s*See more help with --help\s*/g, ' ')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
}

/** unknownFlag answers an unknown flag with the closest one the command has. */
function unknownFlag(flags: string[], ctx: CliErrorContext): string {
  const first = flags[0] ?? '';
  const bare = first.replace(/^-+/, '').replace(/=.*$/, '');
  const names = ctx.flagNames ?? [];
  const near = suggest(bare, names.filter((n) => n.length > 1));
  const what = flags.length === 1 ? `unknown flag ${first}` : `unknown flags ${flags.join(', ')}`;
  return near ? `${what}; did you mean --${near}?` : `${what}; ${helpFix(ctx)}`;
}

/** validationLine rewrites oclif's flag validation failures ("Missing required flag x", dependsOn, ...). */
function validationLine(text: string, ctx: CliErrorContext): string {
  const missing = [...text.matchAll(/Missing required flag (\S+)/g)].map((m) => `--${m[1]}`);
  if (missing.length > 0) return `missing ${joinAnd(missing)}; ${ctx.usage ? `usage: ${ctx.usage}` : helpFix(ctx)}`;
  const needs = /All of the following must be provided when using --(\S+): (.+?)(?:$|\s{2})/.exec(text);
  if (needs) return `--${needs[1]} needs ${needs[2]!.trim()}; ${helpFix(ctx)}`;
  const cannot = /--(\S+?)(?:=\S+)? cannot also be provided when using --(\S+)/.exec(text);
  if (cannot) return `--${cannot[1]} cannot be used with --${cannot[2]}; ${helpFix(ctx)}`;
  return `${text.replace(/^The following errors? occurred:\s*/, '')}; ${helpFix(ctx)}`;
}

/** usageLine rewrites an oclif parse error into one line with a fix; undefined when `err` is not one. */
function usageLine(err: Error & Record<string, unknown>, ctx: CliErrorContext): string | undefined {
  const text = oclifText(err.message ?? '');
  const kind = err.constructor?.name ?? '';
  if (kind === 'NonExistentFlagsError' && Array.isArray(err['flags'])) return unknownFlag(err['flags'] as string[], ctx);
  if (kind === 'UnexpectedArgsError' && Array.isArray(err['args'])) {
    const extra = (err['args'] as unknown[]).map((a) => `"${String(a)}"`);
    return `unexpected argument${extra.length === 1 ? '' : 's'} ${extra.join(', ')}; ${ctx.usage ? `usage: ${ctx.usage}` : helpFix(ctx)}`;
  }
  if (kind === 'RequiredArgsError' && Array.isArray(err['args'])) {
    const names = (err['args'] as Array<{ name?: string }>).map((a) => (a.name ?? 'argument').toUpperCase());
    return `missing ${joinAnd(names)}; ${ctx.usage ? `usage: ${ctx.usage}` : helpFix(ctx)}`;
  }
  if (kind === 'FailedFlagValidationError' || kind === 'ViolatedFlagConstraintError') return validationLine(text, ctx);
  let m = /^Expected --(\S+?)=(.*) to be one of: (.+)$/.exec(text);
  if (m) return `--${m[1]} must be one of ${m[3]} (got "${m[2]}")`;
  m = /^Flag --(\S+) expects one of these values: (.+)$/.exec(text);
  if (m) return `--${m[1]} needs a value, one of ${m[2]}`;
  m = /^Flag --(\S+) expects a value$/.exec(text);
  if (m) return `--${m[1]} needs a value; ${helpFix(ctx)}`;
  m = /^Flag --(\S+) can only be specified once$/.exec(text);
  if (m) return `--${m[1]} can be given only once`;
  m = /^Parsing --(\S+)\s+Expected an integer (?:(greater|less) than or equal to (-?\d+) )?but received: (.*)$/.exec(text);
  if (m) {
    const bound = m[2] === undefined ? 'a whole number' : `a whole number ${m[2] === 'greater' ? '>=' : '<='} ${m[3]}`;
    return `--${m[1]} must be ${bound} (got "${m[4]}")`;
  }
  m = /^Parsing --(\S+)\s+(.*)$/.exec(text);
  if (m) return `--${m[1]}: ${m[2]}`;
  m = /^Unexpected flag (\S+)$/.exec(text);
  if (m) return unknownFlag([m[1]!], ctx);
  m = /^Nonexistent flags?: (.+)$/.exec(text);
  if (m) return unknownFlag(m[1]!.split(/,\s*/), ctx);
  m = /^command (\S+) not found$/.exec(text);
  if (m) {
    const words = m[1]!.split(':');
    const typed = words[0] ?? m[1]!;
    const ids = ctx.commandIds ?? [];
    // A known command followed by words it takes no argument for (`mirror version extra`).
    if (ids.includes(typed) && words.length > 1) return `unexpected argument "${words.slice(1).join(' ')}"; see mirror ${typed} --help`;
    const near = suggest(typed, ids);
    return `unknown command "${typed}"; ${near ? `did you mean "mirror ${near}"?` : 'see mirror --help for the commands'}`;
  }
  const isOclif = kind.endsWith('Error') && 'oclif' in err;
  if (isOclif) return `${text}; ${helpFix(ctx)}`;
  return undefined;
}

/** describeCliError gives the exit code, stable code and one line for any error a command or oclif raised. */
export function describeCliError(err: unknown, ctx: CliErrorContext = {}): CliErrorLine {
  if (isMirrorError(err)) return { exitCode: err.exitCode, code: err.code, line: oneLine(err.describe()) };
  if (err instanceof Error) {
    const e = err as Error & Record<string, unknown> & { oclif?: { exit?: number } };
    const line = usageLine(e, ctx);
    if (line !== undefined) {
      const exit = e.oclif?.exit;
      // oclif marks its parse errors with exit 2; an oclif error with another exit code is a failure of its own.
      const exitCode = exit === undefined || exit === ExitCode.USAGE || exit === ExitCode.FAILURE ? ExitCode.USAGE : exit;
      return { exitCode, code: exitCode === ExitCode.USAGE ? 'USAGE' : 'FAILURE', line: oneLine(line) };
    }
  }
  return { exitCode: ExitCode.FAILURE, code: 'INTERNAL', line: oneLine(`internal error: ${errorMessage(err)}`) };
}

/** oneLine folds line breaks (and the spaces around them) into single spaces. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** isQuietExit tells whether an error is oclif's way to end with exit code 0 (help, version): nothing to print. */
export function isQuietExit(err: unknown): boolean {
  const e = err as { oclif?: { exit?: number }; code?: unknown } | undefined;
  return e?.oclif?.exit === 0 || (e?.code === 'EEXIT' && e.oclif?.exit === 0);
}

/** writeCliError prints an error in the one style (or as one JSON document with `--json`) and sets the exit code. */
export function writeCliError(err: unknown, ctx: CliErrorContext, options: { json: boolean; debug: boolean }): void {
  const d = describeCliError(err, ctx);
  // Secrets the run knows and URL credentials taken out, control characters escaped (src/errors/sanitize.ts).
  d.line = safeLine(d.line);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ status: 'error', code: d.code, exitCode: d.exitCode, message: d.line })}\n`);
  } else {
    process.stderr.write(`${ERROR_PREFIX}${d.line}\n`);
  }
  if (options.debug && err instanceof Error && err.stack) process.stderr.write(`${safeBlock(err.stack)}\n`);
  process.exitCode = d.exitCode;
}
