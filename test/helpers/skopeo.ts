/** skopeo as an independent client that reads back what the tests pushed. */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { run } from './proc.js';

/** SKOPEO_TIMEOUT_MS bounds one skopeo run. */
export const SKOPEO_TIMEOUT_MS = 60_000;

/** SkopeoOptions are the TLS and credential flags of a skopeo call. */
export interface SkopeoOptions {
  /** Verify TLS (false also allows plain HTTP). Default: false. */
  tlsVerify?: boolean | undefined;
  /** `user:password` (passed with --creds; test credentials only). */
  creds?: string | undefined;
  /** Directory with `ca.crt` / client certificates. */
  certDir?: string | undefined;
}

/** flags builds skopeo's flags for one side (`''` for inspect/list-tags, `src-` for copy). */
function flags(options: SkopeoOptions, prefix = ''): string[] {
  const out = [`--${prefix}tls-verify=${options.tlsVerify === true ? 'true' : 'false'}`];
  if (options.creds !== undefined) out.push(`--${prefix}creds`, options.creds);
  if (options.certDir !== undefined) out.push(`--${prefix}cert-dir`, options.certDir);
  return out;
}

/** rawOutput runs skopeo and gives its stdout as bytes (exactly as printed). */
function rawOutput(args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('skopeo', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), SKOPEO_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`skopeo ${args[0] ?? ''} failed (${code}): ${Buffer.concat(err).toString('utf8').slice(-2000)}`));
    });
  });
}

/** skopeoInspectRaw gives the exact manifest bytes `skopeo inspect --raw` reads (ref like `docker://host/repo:tag`). */
export function skopeoInspectRaw(ref: string, options: SkopeoOptions = {}): Promise<Buffer> {
  return rawOutput(['inspect', '--raw', ...flags(options), ref]);
}

/** skopeoInspectRawDigest gives the sha256 digest of the manifest bytes `skopeo inspect --raw` reads. */
export async function skopeoInspectRawDigest(ref: string, options: SkopeoOptions = {}): Promise<string> {
  const raw = await skopeoInspectRaw(ref, options);
  return `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

/** skopeoCopyToOci copies an image (all platforms, digests preserved) into an OCI layout directory, verifying every blob. */
export async function skopeoCopyToOci(ref: string, dir: string, options: SkopeoOptions = {}): Promise<void> {
  await run('skopeo', ['copy', '--all', '--preserve-digests', ...flags(options, 'src-'), ref, `oci:${dir}`], { timeoutMs: SKOPEO_TIMEOUT_MS });
}

/** skopeoListTags lists a repository's tags (ref like `docker://host/repo`). */
export async function skopeoListTags(ref: string, options: SkopeoOptions = {}): Promise<string[]> {
  const out = await run('skopeo', ['list-tags', ...flags(options), ref], { timeoutMs: SKOPEO_TIMEOUT_MS });
  const parsed = JSON.parse(out) as { Tags?: unknown };
  return Array.isArray(parsed.Tags) ? parsed.Tags.filter((t): t is string => typeof t === 'string') : [];
}
