/**
 * Exercises the real OS keychain (keytar) and `login`/`logout` in whatever session it runs in; prints a JSON report
 * on stdout. argv[2] is a scratch directory for the Docker config file.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createCredentialResolver } from '../../../src/auth/chain.js';
import { createKeychain } from '../../../src/auth/keychain.js';
import { login, logout } from '../../../src/auth/login.js';
import { errorMessage } from '../../../src/errors/index.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: keychain-child DIR');
const configPath = join(dir, 'config.json');
const report: Record<string, unknown> = {};
const readConfig = (): string | null => {
  try {
    return readFileSync(configPath, 'utf8');
  } catch {
    return null;
  }
};
try {
  const keychain = createKeychain({ service: 'mirror-test' });
  report['available'] = await keychain.isAvailable();
  report['reason'] = keychain.unavailableReason() ?? null;
  if (report['available']) {
    await keychain.store('direct.example.com', { kind: 'basic', username: 'direct', password: 'direct-secret' });
    report['directGet'] = (await keychain.get('direct.example.com')) ?? null;
    report['directDelete'] = await keychain.delete('direct.example.com');
    report['directAfter'] = (await keychain.get('direct.example.com')) ?? null;
  }
  const verified: unknown[] = [];
  const result = await login({
    host: 'Login.Example.com:5000',
    username: 'robot$ci',
    password: 'login-secret-123',
    verify: async (c) => {
      verified.push(c);
    },
    dockerConfigPath: configPath,
    keychain,
  });
  report['login'] = result;
  report['verified'] = verified;
  report['configAfterLogin'] = readConfig();
  try {
    report['configMode'] = statSync(configPath).mode & 0o777;
  } catch {
    report['configMode'] = null;
  }
  const resolver = createCredentialResolver({ keychain, dockerConfigPath: configPath, env: {}, prompt: false });
  report['resolved'] = await resolver.resolve('login.example.com:5000');
  report['logout'] = await logout({ host: 'login.example.com:5000', dockerConfigPath: configPath, keychain });
  report['keychainAfterLogout'] = (await keychain.get('login.example.com:5000')) ?? null;
  report['configAfterLogout'] = readConfig();
} catch (e) {
  report['error'] = errorMessage(e);
}
process.stdout.write(JSON.stringify(report));
process.exit(0);
