/** The distribution API client: one {@link RegistryClient} per registry host. */
export * from './client.js';
export * from './errors.js';
export { parseWwwAuthenticate, scopeString, pullScope, pushScope, type Challenge, type Scope } from './auth.js';
export type { BlobReader, GetBlobOptions, SignalOption } from './blob.js';
export { DEFAULT_CHUNK_SIZE, type BlobBody, type UploadMode, type UploadOptions, type MountResult, type UploadResult, type UploadSession } from './upload.js';
export { MAX_MANIFEST_SIZE, type FetchedManifest, type ManifestInfo, type PutManifestAnswer } from './manifest.js';
export { fallbackTag, mergeReferrer, mergeReferrers, ReferrersSupport, type FallbackIndex, type ReferrersAnswer } from './referrers.js';
export { nextLink, type ListTagsOptions } from './tags.js';
export { RequestLimiter, type RequestLimits } from './limit.js';
