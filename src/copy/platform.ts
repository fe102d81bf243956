/**
 * Platforms: `--platform OS/ARCH[/VARIANT]` parsed, matched against index entries as containerd matches them
 * (`linux/arm64` is `linux/arm64/v8`, `linux/arm` is `linux/arm/v7`, `amd64` variants `v1` and none are equal), and
 * the platform of the machine running the tool (`--multi-arch system`).
 */
import { MirrorError } from '../errors/index.js';
import type { Platform } from '../oci/manifest.js';

/** PlatformSpec is one wanted platform. */
export interface PlatformSpec {
  os: string;
  architecture: string;
  /** Matched when given; when absent, the architecture's default variant (or none) matches. */
  variant?: string | undefined;
}

/** parsePlatform reads `OS/ARCH[/VARIANT]` (`linux/arm64/v8`); a USAGE error names a bad value. */
export function parsePlatform(text: string): PlatformSpec {
  const parts = text.trim().toLowerCase().split('/');
  const [os, architecture, variant] = parts;
  if (parts.length < 2 || parts.length > 3 || !os || !architecture || (parts.length === 3 && !variant)) {
    throw new MirrorError('USAGE', `invalid --platform "${text.slice(0, 60)}": use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8`);
  }
  return { os, architecture: normalizeArch(architecture), variant: variant === undefined ? undefined : variant };
}

/** formatPlatform writes a platform as `os/arch[/variant]`. */
export function formatPlatform(p: { os?: string | undefined; architecture?: string | undefined; variant?: string | undefined }): string {
  return [p.os ?? '?', p.architecture ?? '?', ...(p.variant ? [p.variant] : [])].join('/');
}

/** normalizeArch maps architecture aliases to the OCI names (`x86_64` -> `amd64`, `aarch64` -> `arm64`). */
function normalizeArch(arch: string): string {
  const aliases: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };
  return aliases[arch] ?? arch;
}

/** defaultVariant is the variant an architecture has when none is written. */
function defaultVariant(arch: string): string | undefined {
  if (arch === 'arm64') return 'v8';
  if (arch === 'arm') return 'v7';
  if (arch === 'amd64') return 'v1';
  return undefined;
}

/** platformMatches tells whether an index entry's platform is the wanted one. */
export function platformMatches(want: PlatformSpec, have: Platform | undefined): boolean {
  if (have === undefined) return false;
  if (have.os?.toLowerCase() !== want.os) return false;
  const arch = normalizeArch((have.architecture ?? '').toLowerCase());
  if (arch !== want.architecture) return false;
  const haveVariant = have.variant?.toLowerCase() ?? defaultVariant(arch);
  const wantVariant = want.variant ?? defaultVariant(arch);
  return haveVariant === wantVariant;
}

/** systemPlatform is the platform of this machine (`--multi-arch system`). */
export function systemPlatform(): PlatformSpec {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return { os, architecture: arch[process.arch] ?? process.arch };
}
