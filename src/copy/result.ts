/** What a copy run reports: per image, per blob kind, and in total. The `--report` file is built from this. */
import type { ErrorCode } from '../errors/index.js';
import type { Platform } from '../oci/manifest.js';

/** ManifestNode is one manifest of an image graph, with its bytes, in push order. */
export interface ManifestNode {
  digest: string;
  mediaType: string;
  size: number;
  platform?: Platform | undefined;
  bytes: Uint8Array;
}

/** ChildManifest is a manifest under an index, for the report. */
export interface ChildManifest {
  digest: string;
  mediaType: string;
  platform?: Platform | undefined;
}

/** ImageOutcome is what happened to one image. */
export interface ImageOutcome {
  /** Source name as the bundle gives it. */
  source: string;
  /** Full destination reference, when the image could be mapped. */
  destination: string | undefined;
  /** Root manifest digest (unchanged from the source unless `converted` says otherwise). */
  digest: string | undefined;
  mediaType: string | undefined;
  /** `planned` in a dry run. */
  status: 'pushed' | 'skipped' | 'failed' | 'planned';
  /** One-line cause when failed. */
  error?: string | undefined;
  errorCode?: ErrorCode | undefined;
  /** Set when the image was changed on the way (docker-save layers compressed): what changed. */
  converted?: string | undefined;
  /** Manifests under the root (every level of nested indexes), children first. */
  children: ChildManifest[];
  /** Number of distinct blobs of the image. */
  blobs: number;
}

/** CopyResult sums up one run. */
export interface CopyResult {
  images: ImageOutcome[];
  blobs: {
    /** Blobs sent over the wire. */
    uploaded: number;
    /** Blobs linked from another repository by cross-repository mount. */
    mounted: number;
    /** Blobs the destination already held. */
    skipped: number;
    /** Blobs that did not verify or could not be sent. */
    failed: number;
    /** Bytes sent. */
    bytesUploaded: number;
  };
  /** How many times the source was read (1, plus re-reads for blobs whose upload was cut). */
  passes: number;
  durationMs: number;
}
