/** Reading bundles as streams: compression sniffing, streaming decompression, tar entries, bundle inputs. */
export * from './sniff.js';
export * from './decompress.js';
export * from './tar.js';
export * from './source.js';
