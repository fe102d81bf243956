/**
 * The per-side connection flags of `copy` (and later `sync`), with skopeo's names: `--src-creds USER[:PASSWORD]`,
 * `--src-authfile`, `--src-no-creds`, `--src-tls-verify=false`, `--src-cert-dir`, and the same with `dest-`; plus the
 * options push has (`--src-cacert`, client certificates, plain HTTP, the password on standard input), per side.
 */
import { Flags } from '@oclif/core';
import { createCredentialResolver } from '../auth/chain.js';
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { timeoutFlag, timeoutsOf } from './flags.js';
import { createHostSettingsResolver } from '../net/settings.js';
import type { SideContext } from '../transport/index.js';

/** Side is which end of a copy a flag is for. */
export type Side = 'src' | 'dest';

/** flagName gives a connection flag's name for a side (`src-creds`), or unprefixed (`creds`) for a one-sided command. */
function flagName(prefix: Side | '', name: string): string {
  return prefix === '' ? name : `${prefix}-${name}`;
}

/** flagSet builds the connection flags with names from `prefix` (`''`: skopeo inspect's unprefixed names). */
function flagSet(prefix: Side | '', label: string, group: string) {
  const n = (name: string): string => flagName(prefix, name);
  return {
    [n('creds')]: Flags.string({ summary: `USER[:PASSWORD] for the ${label} registry (without a password, it is asked on a terminal).`, helpGroup: group }),
    [n('password-stdin')]: Flags.boolean({ summary: `Read the ${label} password from standard input (with --${n('creds')} USER).`, helpGroup: group }),
    [n('authfile')]: Flags.string({ summary: `Docker config.json (auth.json) with credentials for the ${label}.`, helpGroup: group }),
    [n('no-creds')]: Flags.boolean({ summary: `Access the ${label} anonymously.`, helpGroup: group }),
    [n('tls-verify')]: Flags.boolean({
      summary: `Verify the ${label} certificate (default); =false skips the checks and accepts plain HTTP.`,
      allowNo: true,
      helpGroup: group,
    }),
    [n('cert-dir')]: Flags.string({ summary: `certs.d-style directory (ca.crt, client.cert, client.key) for the ${label}.`, helpGroup: group }),
    [n('cacert')]: Flags.string({ summary: `CA certificate (PEM) to trust for the ${label}, added to the system roots. Repeatable.`, multiple: true, multipleNonGreedy: true, helpGroup: group }),
    [n('cert')]: Flags.string({ summary: `Client certificate (PEM) for the ${label}.`, helpGroup: group }),
    [n('key')]: Flags.string({ summary: `Client private key (PEM) for --${n('cert')}.`, helpGroup: group }),
    [n('plain-http')]: Flags.boolean({ summary: `Use plain HTTP for the ${label} registry.`, helpGroup: group }),
  };
}

/** sideFlags gives the connection flags of one side (`src` or `dest`). */
export function sideFlags<P extends Side>(prefix: P, label: string) {
  return flagSet(prefix, label, prefix === 'src' ? 'SOURCE' : 'DESTINATION') as Record<`${P}-${'creds' | 'authfile' | 'cert-dir' | 'cert' | 'key'}`, ReturnType<typeof Flags.string>> &
    Record<`${P}-${'password-stdin' | 'no-creds' | 'tls-verify' | 'plain-http'}`, ReturnType<typeof Flags.boolean>> &
    Record<`${P}-cacert`, ReturnType<typeof Flags.string>>;
}

/**
 * connectionFlags gives the connection flags of a command that reaches one registry, with skopeo inspect's and
 * list-tags' names: `--creds`, `--authfile`, `--no-creds`, `--tls-verify`, `--cert-dir`, and push's other options.
 */
export function connectionFlags(label: string) {
  return {
    ...(flagSet('', label, 'REGISTRY') as Record<'creds' | 'authfile' | 'cert-dir' | 'cert' | 'key', ReturnType<typeof Flags.string>> &
      Record<'password-stdin' | 'no-creds' | 'tls-verify' | 'plain-http', ReturnType<typeof Flags.boolean>> &
      Record<'cacert', ReturnType<typeof Flags.string>>),
    timeout: timeoutFlag,
  };
}

/** SideFlagValues are parsed flags of both sides, as oclif gives them. */
export type SideFlagValues = Record<string, unknown>;

/** splitCreds reads skopeo's `USER[:PASSWORD]`. */
export function splitCreds(text: string, flag: string): { username: string; password: string | undefined } {
  const i = text.indexOf(':');
  const username = i < 0 ? text : text.slice(0, i);
  if (username === '') throw new MirrorError('USAGE', `${flag} needs USER[:PASSWORD]`);
  return { username, password: i < 0 ? undefined : text.slice(i + 1) };
}

/** buildSideContext turns one side's flags into its settings and credential chain (`''`: unprefixed flags). */
export function buildSideContext(prefix: Side | '', flags: SideFlagValues, events: EventSink): SideContext {
  const str = (name: string): string | undefined => {
    const v = flags[flagName(prefix, name)];
    return typeof v === 'string' ? v : undefined;
  };
  const bool = (name: string): boolean | undefined => {
    const v = flags[flagName(prefix, name)];
    return typeof v === 'boolean' ? v : undefined;
  };
  const f = (name: string): string => `--${flagName(prefix, name)}`;
  const cacert = flags[flagName(prefix, 'cacert')];
  const creds = str('creds');
  const split = creds === undefined ? undefined : splitCreds(creds, f('creds'));
  const passwordStdin = bool('password-stdin') ?? false;
  if (passwordStdin && split === undefined) throw new MirrorError('USAGE', `${f('password-stdin')} needs ${f('creds')} USER`);
  if (passwordStdin && split?.password !== undefined) throw new MirrorError('USAGE', `${f('creds')} has a password; drop ${f('password-stdin')}`);
  if ((str('cert') === undefined) !== (str('key') === undefined)) throw new MirrorError('USAGE', `${f('cert')} and ${f('key')} go together`);
  const noCreds = bool('no-creds') ?? false;
  if (noCreds && creds !== undefined) throw new MirrorError('USAGE', `${f('no-creds')} conflicts with ${f('creds')}`);
  const tlsVerify = bool('tls-verify') ?? true;
  const timeout = flags['timeout'];
  return {
    tlsVerify,
    plainHttp: bool('plain-http') ?? false,
    // --timeout (one flag for both sides of copy and sync): undefined keeps the defaults.
    timeouts: timeoutsOf(typeof timeout === 'number' ? timeout : undefined),
    events,
    settings: createHostSettingsResolver({
      cacert: Array.isArray(cacert) ? (cacert as string[]) : undefined,
      certDir: str('cert-dir'),
      cert: str('cert'),
      key: str('key'),
      insecureSkipVerify: !tlsVerify,
      plainHttp: bool('plain-http') ?? false,
    }),
    credentials: createCredentialResolver({
      username: split?.username,
      password: split?.password,
      passwordStdin,
      flagNames: { creds: f('creds'), passwordStdin: f('password-stdin') },
      needCredential: noCreds ? false : undefined,
      dockerConfigPath: str('authfile'),
      events,
    }),
  };
}

/**
 * normalizeBooleanArgs accepts skopeo's `--flag=true|false` for boolean flags (oclif knows `--flag` and `--no-flag`):
 * `--src-tls-verify=false` becomes `--no-src-tls-verify`. Arguments after `--` are left alone.
 */
export function normalizeBooleanArgs(argv: string[], names: readonly string[]): string[] {
  const out: string[] = [];
  let rest = false;
  for (const a of argv) {
    if (rest || a === '--') {
      rest = true;
      out.push(a);
      continue;
    }
    const m = /^--([a-z-]+)=(true|false)$/i.exec(a);
    if (m && names.includes(m[1]!)) out.push(m[2]!.toLowerCase() === 'true' ? `--${m[1]}` : `--no-${m[1]}`);
    else out.push(a);
  }
  return out;
}
