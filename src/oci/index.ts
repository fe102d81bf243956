/** OCI and Docker media types, descriptors, manifests, and digest checks. */
export * from './media-types.js';
export * from './digest.js';
export * from './manifest.js';
