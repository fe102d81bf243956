/**
 * The base of every command: global flags (`--json`, `--debug`), interruption (Ctrl-C aborts the run cleanly),
 * and the one place errors become a one-line message and an exit code from the table in `--help`.
 */
import { Command, Flags } from '@oclif/core';
import { errorMessage, ExitCode, isMirrorError, MirrorError } from '../errors/index.js';
import { guardOutput, safeBlock, safeLine } from './safe-output.js';

/** MirrorCommand is the base class of all commands. */
export abstract class MirrorCommand extends Command {
  static override baseFlags = {
    json: Flags.boolean({ summary: 'Print the result as one JSON document on stdout, and no progress.', helpGroup: 'GLOBAL' }),
    debug: Flags.boolean({ summary: 'Show debug detail (credential sources, retries) and stack traces.', helpGroup: 'GLOBAL' }),
  };

  /** Aborted on SIGINT/SIGTERM; pass its signal to every library call. */
  protected readonly abort = new AbortController();
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    if (this.abort.signal.aborted) process.exit(ExitCode.INTERRUPTED);
    this.abort.abort(new MirrorError('INTERRUPTED', `interrupted by ${sig}`));
  };

  override async init(): Promise<void> {
    guardOutput(process.stdout);
    await super.init();
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  override async finally(err: Error | undefined): Promise<void> {
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
    return super.finally(err);
  }

  /** wantsJson tells whether `--json` was given (also before flags are parsed). */
  protected wantsJson(): boolean {
    return this.argv.includes('--json');
  }

  /** wantsDebug tells whether `--debug` was given. */
  protected wantsDebug(): boolean {
    return this.argv.includes('--debug');
  }

  override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    let code: number;
    let line: string;
    let stable: string;
    if (isMirrorError(err)) {
      code = err.exitCode;
      line = err.describe();
      stable = err.code;
    } else if (err.oclif?.exit !== undefined || err.name === 'CLIError' || err.constructor?.name?.endsWith('Error') && 'oclif' in err) {
      // oclif's own parse errors: bad flags or arguments.
      code = err.oclif?.exit ?? ExitCode.USAGE;
      if (code === 0) return;
      line = (err.message || errorMessage(err)).replace(/\s*\n\s*/g, ' ').trim();
      stable = 'USAGE';
      if (code !== ExitCode.USAGE && code !== ExitCode.FAILURE) stable = 'FAILURE';
    } else {
      code = ExitCode.FAILURE;
      line = `internal error: ${errorMessage(err)}`;
      stable = 'INTERNAL';
    }
    line = safeLine(line);
    if (this.wantsJson()) {
      process.stdout.write(`${JSON.stringify({ status: 'error', code: stable, exitCode: code, message: line })}\n`);
    } else {
      process.stderr.write(`mirror: error: ${line}\n`);
      if (stable === 'USAGE') process.stderr.write(`See: mirror ${this.id ?? ''} --help\n`);
    }
    if (this.wantsDebug() && err.stack) process.stderr.write(`${safeBlock(err.stack)}\n`);
    process.exitCode = code;
  }
}
