/**
 * `mirror list-tags docker://HOST/REPO`: every tag of a repository, page after page (following `Link: rel="next"`),
 * as `skopeo list-tags` lists them. Other transports list what their source names (an OCI layout's ref.names, a
 * docker archive's RepoTags).
 */
import { MirrorError } from '../errors/index.js';
import { formatReference, parseReference } from '../reference/reference.js';
import { openSourceRef, type SideContext } from '../transport/index.js';
import { connectRegistry } from '../transport/registry/connect.js';
import { formatTransportRef, parseTransportRef } from '../transport/refs.js';

/** ListTagsOptions configure {@link listRepositoryTags}. */
export interface ListRepositoryTagsOptions {
  /** `docker://HOST/REPO` (no tag, no digest), or another transport's location. */
  location: string;
  /** How to reach the registry. */
  side: SideContext;
  /** Tags asked per page (the registry's `n`). Default: the registry's own page size. */
  pageSize?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** RepositoryTags is skopeo's `list-tags` document. */
export interface RepositoryTags {
  /** The repository (`HOST/REPO`), as skopeo names it. */
  Repository: string;
  Tags: string[];
}

/** listRepositoryTags lists every tag of a repository. */
export async function listRepositoryTags(options: ListRepositoryTagsOptions): Promise<RepositoryTags> {
  const ref = parseTransportRef(options.location);
  if (ref.transport === 'docker') {
    // Parsed again without the default tag: a repository is named without one.
    const r = parseReference(options.location.trim().slice('docker://'.length), { defaultTag: false });
    if (r.digest !== undefined || r.tag !== undefined) {
      throw new MirrorError('USAGE', `${formatTransportRef(ref)}: list-tags takes a repository, without a tag or digest (docker://${r.registry}/${r.repository})`);
    }
    const { client } = await connectRegistry(r.registry, options.side, { signal: options.signal });
    const tags: string[] = [];
    for await (const t of client.tags(r.repository, { pageSize: options.pageSize, signal: options.signal })) tags.push(t);
    return { Repository: `${r.registry}/${r.repository}`, Tags: tags };
  }
  const opened = await openSourceRef(ref, { ...options.side, signal: options.signal });
  try {
    if (opened.source.tags === undefined) throw new MirrorError('USAGE', `${formatTransportRef(ref)} has no tags to list`);
    const tags: string[] = [];
    for await (const t of opened.source.tags(opened.image.repository, { signal: options.signal })) tags.push(t);
    return { Repository: opened.reference ? formatReference(opened.reference) : formatTransportRef(ref), Tags: tags };
  } finally {
    await opened.source.close();
  }
}
