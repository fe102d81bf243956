/** What a copy run reports: per image, per blob kind, and in total. The `--report` file is built from this. */
import type { ErrorCode } from '../errors/index.js';
import type { Platform } from '../oci/manifest.js';
import type { ImageReference } from '../reference/reference.js';

/** ManifestNode is one manifest of an image graph, with its bytes, in push order. */
export interface ManifestNode {
  digest: string;
  mediaType: string;
  size: number;
  platform?: Platform | undefined;
  bytes: Uint8Array;
  /** Commit order: 0 for an image manifest, 1 + the highest of what it lists for an index (see `order.ts`). */
  height?: number | undefined;
}

/** ChildManifest is a manifest under an index, for the report. */
export interface ChildManifest {
  digest: string;
  mediaType: string;
  platform?: Platform | undefined;
}

/**
 * ImageConflict is set on every image that claims a destination reference another image of the run claims with a
 * different digest (see `./conflicts.ts`).
 */
export interface ImageConflict {
  /** The destination reference claimed (`172.18.0.20:5000/ns/team/app:1.0`). */
  reference: string;
  /** Every image of the run that claims it, in bundle order, this one included. */
  claims: Array<{ source: string; digest: string }>;
  /**
   * What the policy decided for this image: `failed` (`--on-conflict fail`), `won` (first in bundle order, or the
   * same digest as the first) or `skipped` (another image won).
   */
  resolution: 'failed' | 'won' | 'skipped';
  /** With `--on-conflict first`: the source name of the image that got the reference. */
  winner?: string | undefined;
}

/** ImageOutcome is what happened to one image. */
export interface ImageOutcome {
  /** Source name as the bundle gives it. */
  source: string;
  /** Full destination reference, when the image could be mapped. */
  destination: string | undefined;
  /** The normalized source reference, when the image has a usable name. */
  sourceReference?: ImageReference | undefined;
  /** Repository and tag in the destination (no tag: pushed by digest), when the image could be mapped. */
  destinationImage?: { repository: string; tag?: string | undefined } | undefined;
  /** Set when another image of the run claims the same destination reference with a different digest. */
  conflict?: ImageConflict | undefined;
  /** Root manifest digest (unchanged from the source unless `converted` says otherwise). */
  digest: string | undefined;
  mediaType: string | undefined;
  /**
   * `planned` in a dry run; `skipped` when already present; `skipped-conflict` when another image of the run got its
   * destination reference (`--on-conflict first`).
   */
  status: 'pushed' | 'skipped' | 'skipped-conflict' | 'failed' | 'planned';
  /** One-line cause when failed. */
  error?: string | undefined;
  errorCode?: ErrorCode | undefined;
  /** Set when the image was changed on the way (docker-save layers compressed): what changed. */
  converted?: string | undefined;
  /** Manifests under the root (every level of nested indexes), children first. */
  children: ChildManifest[];
  /** Number of distinct blobs of the image. */
  blobs: number;
  /** Bytes of the image as stored (distinct blobs, compressed, plus its manifests); undefined when not planned. */
  size?: number | undefined;
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
