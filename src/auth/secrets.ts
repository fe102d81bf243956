/** Hands the secrets of a credential to the one registry of live secrets (src/errors/sanitize.ts) as they are learned. */
import { registerSecret } from '../errors/sanitize.js';
import type { Credential } from './types.js';

/**
 * registerCredentialSecrets registers what a credential holds that must never be printed: a password (and the
 * base64 `user:password` of its Basic header), an identity (refresh) token, a registry token.
 */
export function registerCredentialSecrets(credential: Credential): void {
  switch (credential.kind) {
    case 'basic':
      registerSecret(credential.password, Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64'));
      return;
    case 'identity-token':
    case 'registry-token':
      registerSecret(credential.token);
      return;
    case 'anonymous':
      return;
  }
}
