/**
 * Image locations in skopeo's transport syntax: `docker://HOST/REPO[:TAG|@DIGEST]`, `oci:DIR[:REF]`,
 * `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF|@N]`, `dir:DIR`. A transport name maps to its parser here and
 * to its openers in `./index.ts`.
 */
import { MirrorError, redactUrl } from '../errors/index.js';
import { clipInput } from '../errors/quote.js';
import { formatReference, parseReference, type ImageReference } from '../reference/reference.js';

/** TransportName is a transport of the skopeo syntax. */
export type TransportName = 'docker' | 'oci' | 'oci-archive' | 'docker-archive' | 'dir';

/** TransportRef is a parsed image location. */
export type TransportRef =
  /** An image in a registry. */
  | { transport: 'docker'; reference: ImageReference }
  /** An OCI layout directory, with the image's `org.opencontainers.image.ref.name` (or none: the only image). */
  | { transport: 'oci'; path: string; ref?: string | undefined }
  /** A tar of an OCI layout. */
  | { transport: 'oci-archive'; path: string; ref?: string | undefined }
  /** A `docker save` tar: an image by name (`REF`), by position (`@N`), or the only one. */
  | { transport: 'docker-archive'; path: string; ref?: string | undefined; index?: number | undefined }
  /** A directory holding one image as skopeo's `dir:` transport writes it (DIR is the whole rest: it may hold colons). */
  | { transport: 'dir'; path: string; ref?: undefined };

/** TRANSPORT_NAMES are the transports, for messages. */
export const TRANSPORT_NAMES: readonly TransportName[] = ['docker', 'oci', 'oci-archive', 'docker-archive', 'dir'];

/** TRANSPORT_PREFIXES are how each transport's locations begin (`docker://`, `oci:`, ...). */
export const TRANSPORT_PREFIXES: readonly string[] = TRANSPORT_NAMES.map((n) => (n === 'docker' ? 'docker://' : `${n}:`));

/** hasTransportPrefix tells a location in skopeo's syntax from a path (a bundle file or directory). */
export function hasTransportPrefix(text: string): boolean {
  return TRANSPORT_PREFIXES.some((p) => text.startsWith(p));
}

/** usage builds the USAGE error for a location that does not parse. */
function usage(input: string, why: string): MirrorError {
  return new MirrorError('USAGE', `invalid image location "${clipInput(redactUrl(input) === '<url>' ? input : redactUrl(input))}": ${why}`, {
    hint: 'use docker://HOST/REPO:TAG, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF|@N] or dir:DIR',
  });
}

/** splitPathRef splits `PATH[:REF]` at the first colon, as skopeo does (so PATH cannot hold one). */
function splitPathRef(rest: string): { path: string; ref: string | undefined } {
  const i = rest.indexOf(':');
  return i < 0 ? { path: rest, ref: undefined } : { path: rest.slice(0, i), ref: rest.slice(i + 1) || undefined };
}

/** parseTransportRef reads a location in skopeo's transport syntax. */
export function parseTransportRef(input: string): TransportRef {
  const text = input.trim();
  const colon = text.indexOf(':');
  if (colon <= 0) throw usage(input, `no transport (${TRANSPORT_PREFIXES.join(', ')})`);
  const name = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  switch (name) {
    case 'docker': {
      if (!rest.startsWith('//')) throw usage(input, 'docker: needs //, as in docker://HOST/REPO:TAG');
      const body = rest.slice(2);
      if (/^[^/]*@[^/]*\//.test(body)) throw usage(input, 'credentials do not go in the location; use --src-creds/--dest-creds');
      try {
        return { transport: 'docker', reference: parseReference(body) };
      } catch (e) {
        throw usage(input, e instanceof MirrorError ? e.message.replace(/^invalid image reference "[^"]*": /, '') : String(e));
      }
    }
    case 'oci':
    case 'oci-archive': {
      const { path, ref } = splitPathRef(rest);
      if (path === '') throw usage(input, `${name}: needs a ${name === 'oci' ? 'directory' : 'file'}`);
      return { transport: name, path, ref };
    }
    case 'docker-archive': {
      const { path, ref } = splitPathRef(rest);
      if (path === '') throw usage(input, 'docker-archive: needs a file');
      const at = /^(.*)@(\d+)$/.exec(path);
      if (at && ref === undefined) return { transport: 'docker-archive', path: at[1]!, index: Number(at[2]) };
      if (ref !== undefined && /^@\d+$/.test(ref)) return { transport: 'docker-archive', path, index: Number(ref.slice(1)) };
      return { transport: 'docker-archive', path, ref };
    }
    case 'dir':
      if (rest === '') throw usage(input, 'dir: needs a directory');
      return { transport: 'dir', path: rest };
    default:
      throw usage(input, `unknown transport "${clipInput(name, 20)}" (known: ${TRANSPORT_NAMES.join(', ')})`);
  }
}

/** formatTransportRef writes a location back. */
export function formatTransportRef(ref: TransportRef): string {
  switch (ref.transport) {
    case 'docker':
      return `docker://${formatReference(ref.reference)}`;
    case 'docker-archive':
      return `docker-archive:${ref.path}${ref.index !== undefined ? `:@${ref.index}` : ref.ref !== undefined ? `:${ref.ref}` : ''}`;
    default:
      return `${ref.transport}:${ref.path}${ref.ref !== undefined ? `:${ref.ref}` : ''}`;
  }
}
