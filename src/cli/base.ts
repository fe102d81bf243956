/**
 * The base of every command: global flags (`--json`, `--debug`), interruption (Ctrl-C aborts the run cleanly; a
 * second signal bounds the shutdown; every interrupted run exits 130 with its message), and the one place errors
 * become a one-line message and an exit code from the table in `--help`.
 */
import { Command, Flags } from '@oclif/core';
import { ExitCode, isMirrorError, MirrorError } from '../errors/index.js';
import { type CliErrorContext, isQuietExit, writeCliError } from './errors.js';
import { guardOutput } from './safe-output.js';

/**
 * FORCE_EXIT_MS bounds the shutdown once a second signal came: the first one already stopped everything in flight
 * (requests aborted, decoder processes killed), so the run normally ends well before; if not, the process leaves
 * then, with the message and exit code 130. A third signal leaves at once.
 */
export const FORCE_EXIT_MS = 3_000;

/** MirrorCommand is the base class of all commands. */
export abstract class MirrorCommand extends Command {
  static override baseFlags = {
    json: Flags.boolean({ summary: 'Print the result as one JSON document on stdout, and no progress.', helpGroup: 'GLOBAL' }),
    debug: Flags.boolean({ summary: 'Show debug detail (credential sources, retries) and stack traces.', helpGroup: 'GLOBAL' }),
  };

  /** Aborted on SIGINT/SIGTERM; pass its signal to every library call. */
  protected readonly abort = new AbortController();
  /** Signals received, in order. */
  private readonly signals: NodeJS.Signals[] = [];
  /** Set once the command has ended and said so (its message printed, its exit code set). */
  private ended = false;
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    this.signals.push(sig);
    // Ended already (the process is only finishing its last writes): leave now, with the code already set.
    if (this.ended) process.exit(process.exitCode ?? ExitCode.INTERRUPTED);
    if (this.signals.length === 1) {
      this.abort.abort(new MirrorError('INTERRUPTED', `interrupted by ${sig}`));
      return;
    }
    if (this.signals.length === 2) {
      // Still stopping: a bounded wait for the report and the summary, then leave anyway.
      setTimeout(() => this.forceExit(), FORCE_EXIT_MS).unref();
      return;
    }
    this.forceExit();
  };

  /** interrupted tells whether a signal (SIGINT, SIGTERM) has been received. */
  protected get interrupted(): boolean {
    return this.signals.length > 0;
  }

  /** interruptedError is the error an interrupted run ends with. */
  private interruptedError(): MirrorError {
    return new MirrorError('INTERRUPTED', `interrupted by ${this.signals[0] ?? 'a signal'}`);
  }

  /** forceExit leaves at once, with the interrupted message and exit code 130 (child processes got their signal already). */
  private forceExit(): void {
    if (this.ended) process.exit(process.exitCode ?? ExitCode.INTERRUPTED);
    this.ended = true;
    this.printInterrupted();
    process.exit(ExitCode.INTERRUPTED);
  }

  override async init(): Promise<void> {
    guardOutput(process.stdout);
    await super.init();
    // Not `once`: a second signal must reach this handler too, not the default one that kills without a word.
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  override async finally(err: Error | undefined): Promise<void> {
    // A run that was interrupted ends with exit code 130 and says so, even when it had nothing left to do.
    if (err === undefined && this.interrupted && !this.ended) {
      this.printInterrupted();
    }
    // The handlers stay until the process exits: a signal now only makes it leave at once with its exit code.
    this.ended = true;
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

  /**
   * usageLine is the command's shortest correct form, shown when an argument or a required flag is missing.
   * (Every argument of every command sets `ignoreStdin: true`: oclif would otherwise read a missing argument from
   * standard input, which is where `--password-stdin` keeps the password.)
   */
  static usageLine: string | undefined;

  override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    if (isQuietExit(err)) return;
    if (this.ended) return;
    this.ended = true;
    // Whatever broke while stopping (a decoder killed by the same Ctrl-C), the run was interrupted.
    const shown = this.interrupted && !(isMirrorError(err) && err.exitCode === ExitCode.INTERRUPTED) ? this.interruptedError() : err;
    writeCliError(shown, this.errorContext(), { json: this.wantsJson(), debug: this.wantsDebug() });
  }

  /** printInterrupted writes the interrupted line (or its JSON error document) and sets exit code 130. */
  private printInterrupted(): void {
    writeCliError(this.interruptedError(), this.errorContext(), { json: this.wantsJson(), debug: false });
  }

  /** errorContext tells the error rewriting which command ran and what its flags are called. */
  private errorContext(): CliErrorContext {
    const ctor = this.constructor as typeof MirrorCommand;
    const flags = { ...ctor.baseFlags, ...ctor.flags };
    const names: string[] = [];
    for (const [name, flag] of Object.entries(flags)) {
      names.push(name, ...(flag.aliases ?? []));
      if (flag.char) names.push(flag.char);
    }
    return { commandId: this.id, flagNames: names, usage: ctor.usageLine, commandIds: this.config.commandIDs };
  }
}
