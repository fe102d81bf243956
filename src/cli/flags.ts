/**
 * Flags shared by every command that talks to a registry (credentials, TLS, retries), named after the tools users
 * come from (bmctl, actl, skopeo, docker), and the one function that turns them into settings and credentials.
 */
import { Flags } from '@oclif/core';
import { createCredentialResolver, passwordFlagWarning } from '../auth/chain.js';
import type { CredentialResolver } from '../auth/types.js';
import type { EventSink } from '../events/index.js';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_HEADERS_TIMEOUT_MS, uniformTimeouts, type HttpTimeouts } from '../net/http.js';
import { createHostSettingsResolver } from '../net/settings.js';
import { DEFAULT_RETRY_TIMES, type HostSettingsResolver } from '../net/types.js';

/** connectionFlags are the credential, TLS and retry flags. */
export const connectionFlags = {
  username: Flags.string({ summary: 'Registry username (with --password-stdin).', helpGroup: 'CREDENTIALS' }),
  password: Flags.string({ summary: 'Registry password; visible in the process list, prefer --password-stdin.', helpGroup: 'CREDENTIALS' }),
  'password-stdin': Flags.boolean({ summary: 'Read the registry password from standard input.', helpGroup: 'CREDENTIALS' }),
  'need-credential': Flags.string({
    summary: 'false: the registry is anonymous, look for no credentials (bmctl).',
    options: ['true', 'false'],
    helpGroup: 'CREDENTIALS',
  }),
  'no-registry-credential': Flags.boolean({ summary: 'Same as --need-credential=false (actl).', helpGroup: 'CREDENTIALS' }),
  'docker-config': Flags.string({
    summary: 'Docker config.json to read credentials from.',
    aliases: ['authfile'],
    helpGroup: 'CREDENTIALS',
  }),
  // One value per --cacert, so `mirror push --cacert ca.crt BUNDLE REGISTRY` leaves BUNDLE and REGISTRY to the arguments.
  cacert: Flags.string({ summary: 'CA certificate (PEM) to trust, added to the system roots. Repeatable.', multiple: true, multipleNonGreedy: true, helpGroup: 'TLS' }),
  'cert-dir': Flags.string({ summary: 'certs.d-style directory (HOST:PORT/ca.crt, client.cert, client.key).', helpGroup: 'TLS' }),
  cert: Flags.string({ summary: 'Client certificate (PEM) for mutual TLS.', dependsOn: ['key'], helpGroup: 'TLS' }),
  key: Flags.string({ summary: 'Client private key (PEM) for --cert.', dependsOn: ['cert'], helpGroup: 'TLS' }),
  'insecure-skip-tls-verify': Flags.boolean({ summary: 'Do not verify the registry certificate (unsafe).', helpGroup: 'TLS' }),
  'plain-http': Flags.boolean({ summary: 'Use plain HTTP, no TLS (as http://HOST does).', helpGroup: 'TLS' }),
  'retry-times': Flags.integer({ summary: 'Retries per request on 408/429/5xx and cut connections.', default: DEFAULT_RETRY_TIMES, min: 0, max: 100 }),
};

/**
 * timeoutFlag is `--timeout SECONDS` of every command that talks to registries: how long a registry (or its token
 * server) may stay silent before a request is retried; a host that stays silent for two timeouts in a row is given up on.
 */
export const timeoutFlag = Flags.integer({
  summary: `Seconds a registry may stay silent before a request is retried (default: ${DEFAULT_CONNECT_TIMEOUT_MS / 1000} to connect, ${DEFAULT_HEADERS_TIMEOUT_MS / 1000} for an answer, ${DEFAULT_BODY_TIMEOUT_MS / 1000} within one).`,
  description:
    'How long the registry (and its token server) may stay silent: to accept a connection, to start answering a request once it was sent ' +
    '(or to take more of an upload), and between two pieces of an answer. Each request that times out is shown as a warning and retried ' +
    '(--retry-times); a registry that leaves requests unanswered for two timeouts in a row ends the run with exit code 6, naming it.',
  min: 1,
  max: 3600,
});

/** timeoutsOf turns `--timeout` into request timeouts (undefined: the defaults). */
export function timeoutsOf(seconds: number | undefined): HttpTimeouts | undefined {
  return seconds === undefined ? undefined : uniformTimeouts(seconds);
}

/** ConnectionFlagValues are the parsed values of {@link connectionFlags}. */
export interface ConnectionFlagValues {
  username?: string | undefined;
  password?: string | undefined;
  'password-stdin'?: boolean | undefined;
  'need-credential'?: string | undefined;
  'no-registry-credential'?: boolean | undefined;
  'docker-config'?: string | undefined;
  cacert?: string[] | undefined;
  'cert-dir'?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  'insecure-skip-tls-verify'?: boolean | undefined;
  'plain-http'?: boolean | undefined;
}

/** Connection is what registry clients need from the flags. */
export interface Connection {
  settings: HostSettingsResolver;
  credentials: CredentialResolver;
}

/** ConnectionDefaults are per-command defaults for {@link buildConnection}. */
export interface ConnectionDefaults {
  /**
   * Whether a registry that asks for credentials must get some (prompting on a terminal at once) when
   * `--need-credential` is not given: true for push destinations, as bmctl does. Default: undefined (anonymous
   * first, then the prompt or an AUTH error when anonymous is refused).
   */
  needCredential?: boolean | undefined;
}

/** buildConnection turns the flags into host settings and a credential chain; warnings go to `events`. */
export function buildConnection(flags: ConnectionFlagValues, events: EventSink, defaults: ConnectionDefaults = {}): Connection {
  if (flags.password !== undefined) events({ type: 'warning', message: passwordFlagWarning() });
  const need = flags['no-registry-credential']
    ? false
    : flags['need-credential'] === undefined
      ? defaults.needCredential
      : flags['need-credential'] === 'true';
  return {
    settings: createHostSettingsResolver({
      cacert: flags.cacert,
      certDir: flags['cert-dir'],
      cert: flags.cert,
      key: flags.key,
      insecureSkipVerify: flags['insecure-skip-tls-verify'] ?? false,
      plainHttp: flags['plain-http'] ?? false,
    }),
    credentials: createCredentialResolver({
      username: flags.username,
      password: flags.password,
      passwordStdin: flags['password-stdin'] ?? false,
      needCredential: need,
      dockerConfigPath: flags['docker-config'],
      events,
    }),
  };
}
