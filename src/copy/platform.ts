/**
 * Platforms: `--platform OS/ARCH[/VARIANT]` parsed, matched against index entries as containerd matches them
 * (`linux/arm64` is `linux/arm64/v8`, `linux/arm` is `linux/arm/v7`, `amd64` variants `v1` and none are equal), and
 * the platform of the machine running the tool (`--multi-arch system`).
 */
import type { PlatformSpec } from '../oci/platform.js';

/** Parsing, formatting and matching live with the other OCI rules, in src/oci/platform.ts; copy and push share them. */
export { formatPlatform, parsePlatform, platformMatches, type PlatformSpec } from '../oci/platform.js';

/** systemPlatform is the platform of this machine (`--multi-arch system`). */
export function systemPlatform(): PlatformSpec {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return { os, architecture: arch[process.arch] ?? process.arch };
}
