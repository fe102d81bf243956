/** Settings for reaching one registry host. Built by `src/net/settings.ts`, consumed by `src/net/http.ts`. */

/** TlsSettings are the TLS options for one host. */
export interface TlsSettings {
  /** Extra CA certificates (PEM text), added to the system roots, never replacing them. */
  ca?: string[];
  /** Client certificate chain (PEM text). */
  cert?: string;
  /** Client private key (PEM text). */
  key?: string;
  /** Skip server certificate verification (`--insecure-skip-tls-verify`). Default: false. */
  insecureSkipVerify?: boolean;
  /** Where the CA / client files came from (for messages: `--cacert`, `/etc/docker/certs.d/host:5000`). */
  origins?: string[];
}

/** HostSettings are everything needed to open connections to one `host[:port]`. */
export interface HostSettings {
  /** `http` only when plain HTTP was asked for. */
  scheme: 'http' | 'https';
  /** TLS options (unused for http). */
  tls: TlsSettings;
  /** Proxy URL to use for this host, or undefined for a direct connection. */
  proxy?: string | undefined;
}

/** HostSettingsResolver finds the settings for a host (flags, certs.d directories, proxy environment). */
export interface HostSettingsResolver {
  /** forHost gives the settings for `host[:port]`; `scheme` is the scheme the caller wants for that host. */
  forHost(host: string, scheme: 'http' | 'https'): Promise<HostSettings>;
}

/** RetryOptions bound retries of idempotent requests and uploads. */
export interface RetryOptions {
  /** How many times a failed request is tried again (`--retry-times`). Default: {@link DEFAULT_RETRY_TIMES}. */
  retries?: number;
  /** Ceiling of the first backoff delay in ms (each retry doubles it; the wait is half of it plus a random part of the other half). Default: 500. */
  baseDelayMs?: number;
  /** Largest backoff delay in ms, also the cap on Retry-After. Default: 30000. */
  maxDelayMs?: number;
}

/** DEFAULT_RETRY_TIMES is the default number of retries per request. */
export const DEFAULT_RETRY_TIMES = 5;
