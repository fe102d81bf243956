/** Credentials and where they come from. The chain lives in `src/auth/chain.ts`. */

/** Credential is what a registry is authenticated with. */
export type Credential =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  /** A refresh token (Docker config `identitytoken`), exchanged through the OAuth2 POST flow. */
  | { kind: 'identity-token'; username?: string | undefined; token: string }
  /** A bearer token given directly (`registrytoken`), sent as is. */
  | { kind: 'registry-token'; token: string };

/** ResolvedCredential is a credential with the name of the source it came from (never the secret). */
export interface ResolvedCredential {
  credential: Credential;
  /** e.g. `--username/--password-stdin`, `keychain`, `/root/.docker/config.json auths`, `docker-credential-pass`, `prompt`, `anonymous`. */
  source: string;
}

/** CredentialSource is one place credentials may come from. */
export interface CredentialSource {
  /** A name for messages (`docker config /root/.docker/config.json`). */
  readonly name: string;
  /** get returns the credential for `host[:port]`, or undefined when this source has none. */
  get(host: string, signal?: AbortSignal): Promise<ResolvedCredential | undefined>;
}

/**
 * CredentialResolver gives the credential for a host. The registry client calls it lazily, on the first `401`,
 * and again (with `retry: true`) when a credential was refused, so a prompt can ask once more.
 */
export interface CredentialResolver {
  resolve(host: string, options?: { signal?: AbortSignal; retry?: boolean }): Promise<ResolvedCredential>;
}

/** anonymousResolver never has credentials. */
export const anonymousResolver: CredentialResolver = {
  resolve: async () => ({ credential: { kind: 'anonymous' }, source: 'anonymous' }),
};
