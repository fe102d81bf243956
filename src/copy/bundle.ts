/**
 * A bundle pushed through the copy engine. The bundle's one pass is its own business (`BundlePlacer` of
 * src/transport/bundle/placer.ts: blobs placed as they go by, a staging repository, a memory budget, re-read passes);
 * then its catalog is planned here without any destination (names mapped, platforms chosen, manifests verified,
 * conflicts settled) and the images are finished by {@link copyImagesFrom} reading the catalog as an `ImageSource`,
 * with what the pass placed as its `located` blobs (so a blob in staging is mounted, never sent again). Images whose
 * blobs went by in the stream run again after a re-read pass. A dry run stops after the plan: no destination is
 * needed, and what it lists is what a push would send. It never prints; it emits typed events.
 */
import { errorMessage, isMirrorError, MirrorError } from '../errors/index.js';
import { type EventSink, noEvents } from '../events/index.js';
import { verifyBytes } from '../oci/digest.js';
import { blobDescriptors, type Descriptor, layersAgainstConfig, layersMismatchError, parseManifest } from '../oci/manifest.js';
import { missingPlatforms, type PlatformSpec, selectPlatforms } from '../oci/platform.js';
import { CatalogImageSource, CatalogSource } from '../transport/bundle/catalog-source.js';
import { BundlePlacer, isRunFatal, type PlacerOptions } from '../transport/bundle/placer.js';
import type { Catalog, DestinationImage, ImageDestination, SourceImage, StreamSource } from '../transport/types.js';
import { type ConflictPolicy, DEFAULT_CONFLICT_POLICY, settleConflicts } from './conflicts.js';
import { type CopyJob, copyImagesFrom, MAX_MANIFEST_DEPTH, MAX_MANIFESTS_PER_IMAGE } from './copy.js';
import type { CopyResult, ImageConflict, ImageOutcome, ManifestNode } from './result.js';

export { DEFAULT_MEMORY_BLOB_MAX, DEFAULT_MEMORY_BUDGET, DEFAULT_REREAD_PASSES, SETTLE_TIMEOUT_MS } from '../transport/bundle/placer.js';

/** DEFAULT_JOBS is how many blob and image operations run at once. */
export const DEFAULT_JOBS = 4;
/** DEFAULT_STAGING_REPOSITORY is the repository (under the namespace) that takes blobs met before the metadata. */
export const DEFAULT_STAGING_REPOSITORY = 'mirror-staging';

/**
 * BundleCopyOptions tune {@link copyBundle}. `memoryBlobMax`, `memoryBudget`, `stagingRepository` and `rereadPasses`
 * go to the bundle's pass as they are (see {@link PlacerOptions} for their meaning and defaults).
 */
export interface BundleCopyOptions extends Pick<PlacerOptions, 'memoryBlobMax' | 'memoryBudget' | 'stagingRepository' | 'rereadPasses'> {
  /** Where each source image goes; a MirrorError fails that image only. */
  map: (image: SourceImage) => DestinationImage | MirrorError;
  /** Concurrent operations. Default {@link DEFAULT_JOBS}. */
  jobs?: number | undefined;
  /**
   * Push only these platforms of multi-platform images (`--platform`): one platform puts that platform's manifest
   * alone under the name, several a new index of just those; single-platform images pass when they match. Default:
   * every image whole, as the source has it. See {@link selectPlatforms}.
   */
  platforms?: readonly PlatformSpec[] | undefined;
  /** Read the source, plan, and send nothing. Default false. */
  dryRun?: boolean | undefined;
  /** What happens to images that claim one destination reference with different digests. Default {@link DEFAULT_CONFLICT_POLICY}. */
  onConflict?: ConflictPolicy | undefined;
  /** Progress events. */
  events?: EventSink | undefined;
  signal?: AbortSignal | undefined;
}

/** PlannedImage is one catalog image, planned from the catalog alone. */
interface PlannedImage {
  image: SourceImage;
  dest: DestinationImage | undefined;
  /** Manifests in push order: children first, the root last. */
  manifests: ManifestNode[];
  /** Distinct blobs of all manifests. */
  blobs: Descriptor[];
  error: MirrorError | undefined;
  /** Set when another image of the run claims the same destination reference. */
  conflict?: ImageConflict | undefined;
  outcome?: ImageOutcome;
  /** The root pushed when it is not the source's (platforms chosen), and what that changed. */
  chosen?: { descriptor: Descriptor; converted: string | undefined };
}

/** lostConflict tells whether another image of the run got this image's destination reference (`--on-conflict first`). */
function lostConflict(p: PlannedImage): boolean {
  return p.error === undefined && p.conflict?.resolution === 'skipped';
}

/** What runs that stopped had done, by the error they stopped with. */
const partialResults = new WeakMap<object, CopyResult>();

/**
 * partialResultOf gives what a run that {@link copyBundle} ended with `error` had done: images finished (pushed or
 * already present) keep their outcome, the others are `failed` with the stop's code; blob counts are those reached.
 * Undefined for an error that did not come from a run. `images` is empty when the run stopped before it knew them.
 */
export function partialResultOf(error: unknown): CopyResult | undefined {
  return typeof error === 'object' && error !== null ? partialResults.get(error) : undefined;
}

/**
 * copyBundle copies every image of a bundle into `destination` (none for a dry run). Per-image failures are recorded
 * in the result (the other images go on); failures that concern everything (authentication, TLS, network,
 * interruption) throw, once everything in flight has stopped; {@link partialResultOf} tells what was done.
 */
export async function copyBundle(source: StreamSource, destination: ImageDestination | undefined, options: BundleCopyOptions): Promise<CopyResult> {
  return new BundleRun(source, destination, options).run();
}

class BundleRun {
  private readonly events: EventSink;
  private readonly placer: BundlePlacer;
  private readonly started = Date.now();
  private plans: PlannedImage[] | undefined;
  private readonly stats = { uploaded: 0, mounted: 0, skipped: 0, bytesUploaded: 0 };

  constructor(
    private readonly source: StreamSource,
    private readonly dest: ImageDestination | undefined,
    private readonly options: BundleCopyOptions,
  ) {
    this.events = options.events ?? noEvents;
    this.placer = new BundlePlacer(source, options.dryRun ? undefined : dest, {
      map: options.map,
      jobs: options.jobs ?? DEFAULT_JOBS,
      memoryBlobMax: options.memoryBlobMax,
      memoryBudget: options.memoryBudget,
      stagingRepository: options.stagingRepository,
      rereadPasses: options.rereadPasses,
      dryRun: options.dryRun,
      events: this.events,
      signal: options.signal,
    });
  }

  async run(): Promise<CopyResult> {
    try {
      return await this.runStages();
    } catch (e) {
      this.placer.stop(e);
      await this.placer.settle();
      const err = this.placer.stopError ?? e;
      if (typeof err === 'object' && err !== null) partialResults.set(err, this.partialResult(err));
      throw err;
    } finally {
      this.placer.detach();
    }
  }

  /** partialResult is what a stopped run had done: finished images as they ended, the others failed with the stop. */
  private partialResult(err: object): CopyResult {
    const cause = isMirrorError(err) ? err : new MirrorError('INTERNAL', errorMessage(err));
    const notDone = new MirrorError(cause.code, `not finished: ${cause.message}`);
    return this.result((this.plans ?? []).map((p) => p.outcome ?? this.outcome(p, 'failed', notDone)));
  }

  private async runStages(): Promise<CopyResult> {
    const placer = this.placer;
    const catalog = await placer.scan();
    const served = new CatalogSource(catalog, placer, this.source.description);
    const plans = catalog.images.map((img) => this.planImage(img, catalog, served));
    this.checkConflicts(plans);
    this.plans = plans;
    this.events({ type: 'plan', images: plans.filter((p) => !lostConflict(p)).length });
    if (this.options.dryRun || this.dest === undefined) {
      return this.result(plans.map((p) => this.outcome(p, p.error ? 'failed' : lostConflict(p) ? 'skipped-conflict' : 'planned', p.error)));
    }

    this.events({ type: 'phase', phase: 'finish' });
    for (const p of plans) if (p.error) this.fail(p, p.error);
    for (const p of plans) if (lostConflict(p)) p.outcome = this.outcome(p, 'skipped-conflict');
    let pending = plans.filter((p) => p.error === undefined && !lostConflict(p));
    const maxPasses = placer.rereadPasses;
    for (let round = 0; pending.length > 0; round++) {
      const deferred = await this.finish(pending, served);
      if (deferred.length === 0) break;
      if (round >= maxPasses || !placer.pendingRereads) {
        for (const p of deferred) {
          this.fail(p, new MirrorError('NETWORK', `blobs of ${p.image.name} could not be uploaded after ${maxPasses} extra reads of the bundle`, { image: p.image.name }));
        }
        break;
      }
      served.update(await placer.reread());
      pending = deferred;
    }
    // Uploads the pass started that no image waited for (staging, blobs of failed images): settled before the commit.
    await placer.settled();
    await this.dest.commit({ signal: placer.signal });
    return this.result(plans.map((p) => p.outcome ?? this.outcome(p, 'failed', new MirrorError('INTERNAL', 'image was not finished'))));
  }

  /**
   * finish has the copy engine finish planned images (skip the unchanged, place blobs, put manifests, tag) and records
   * their outcomes; it gives back the images whose blobs went by in the stream (to run again after a re-read pass).
   */
  private async finish(pending: PlannedImage[], served: CatalogSource): Promise<PlannedImage[]> {
    const placer = this.placer;
    const dest = this.dest!;
    const views = new Map<CopyJob, { plan: PlannedImage; view: CatalogImageSource }>();
    const byName = new Map<string, CatalogImageSource>();
    const jobs: CopyJob[] = pending.map((p) => {
      const target = p.dest!;
      const view = served.forImage(target.repository);
      const root = p.manifests[p.manifests.length - 1]!;
      const job: CopyJob = {
        source: view,
        image: { repository: '', digest: root.digest },
        name: p.image.name,
        reference: p.image.reference,
        destination: target,
        descriptor: p.chosen?.descriptor ?? p.image.descriptor,
      };
      views.set(job, { plan: p, view });
      byName.set(`${p.image.name}\n${target.name}`, view);
      return job;
    });
    // What the engine places is known to later rounds too; an image that waits for a re-read is not reported failed.
    const events: EventSink = (e) => {
      if (e.type === 'blob') placer.locate(e.repository, e.digest);
      if (e.type === 'image' && e.status === 'failed' && byName.get(`${e.source}\n${e.destination}`)?.wentBy === true) return;
      this.events(e);
    };
    const jobCount = this.options.jobs ?? DEFAULT_JOBS;
    const run = copyImagesFrom(jobs, dest, {
      jobs: jobCount,
      transfers: jobCount,
      located: placer.located,
      onConflict: this.options.onConflict,
      events,
      signal: placer.signal,
    });
    const deferred: PlannedImage[] = [];
    try {
      for await (const o of run.outcomes) {
        const { plan: p, view } = views.get(o.job)!;
        if (o.status === 'failed' && view.wentBy) {
          deferred.push(p);
          continue;
        }
        const out = this.outcome(p, o.status);
        p.outcome = o.status === 'failed' ? { ...out, error: o.error, errorCode: o.errorCode } : out;
      }
    } finally {
      const s = run.summary().blobs;
      this.stats.uploaded += s.uploaded;
      this.stats.mounted += s.mounted;
      this.stats.skipped += s.skipped;
      this.stats.bytesUploaded += s.bytesUploaded;
    }
    return deferred;
  }

  // ---------------------------------------------------------------- planning, from the catalog alone

  /**
   * planImage maps an image, chooses its platforms and walks its manifests in the catalog (verified, bounded), so a
   * broken image fails before conflicts are settled and a dry run lists what a push would send. The manifests it
   * verified are registered with the catalog source the engine reads.
   */
  private planImage(image: SourceImage, catalog: Catalog, served: CatalogSource): PlannedImage {
    const plan: PlannedImage = { image, dest: undefined, manifests: [], blobs: [], error: image.error };
    if (plan.error) return plan;
    const mapped = this.options.map(image);
    if (mapped instanceof MirrorError) {
      plan.error = mapped;
      return plan;
    }
    plan.dest = mapped;
    try {
      const blobs = new Map<string, Descriptor>();
      const seen = new Set<string>();
      // A new index made by choosing platforms is not in the catalog: its bytes are kept here.
      const made = new Map<string, Uint8Array>();
      const lookup = (d: string): Uint8Array | undefined => made.get(d) ?? catalog.bytes(d);
      let root = image.descriptor;
      if (this.options.platforms !== undefined && this.options.platforms.length > 0) {
        const chosen = selectPlatforms(image.descriptor, this.options.platforms, lookup, image.name);
        if (chosen.warning) this.events({ type: 'warning', message: chosen.warning });
        if (chosen.bytes) made.set(chosen.descriptor.digest, chosen.bytes);
        if (chosen.descriptor !== image.descriptor) plan.chosen = { descriptor: chosen.descriptor, converted: chosen.converted };
        root = chosen.descriptor;
      }
      const manifests: ManifestNode[] = [];
      const walk = (desc: Descriptor, depth: number): void => {
        if (depth > MAX_MANIFEST_DEPTH) {
          throw new MirrorError('BAD_INPUT', `index nesting deeper than ${MAX_MANIFEST_DEPTH} levels at ${desc.digest}`, { image: image.name, digest: desc.digest });
        }
        if (seen.has(desc.digest)) return;
        seen.add(desc.digest);
        if (seen.size > MAX_MANIFESTS_PER_IMAGE) throw new MirrorError('BAD_INPUT', `${image.name} has more than ${MAX_MANIFESTS_PER_IMAGE} manifests`, { image: image.name });
        const bytes = lookup(desc.digest);
        const problem = catalog.problem?.(desc.digest, desc.size);
        if (problem) throw problem;
        if (bytes === undefined) {
          throw new MirrorError('BAD_INPUT', `manifest ${desc.digest} of ${image.name} is missing from the bundle`, { image: image.name, digest: desc.digest });
        }
        verifyBytes(bytes, desc.digest, desc.size, { image: image.name, phase: 'read' });
        const parsed = parseManifest(bytes, desc.mediaType ?? catalog.mediaTypeOf(desc.digest), { image: image.name, digest: desc.digest });
        if (parsed.kind === 'index') {
          // An index exported without all its platforms: say which it lacks and what to do, not just "missing".
          const lacking = missingPlatforms(image.name, parsed.index, (d) => lookup(d) ?? (catalog.problem?.(d) ? bytes : undefined));
          if (lacking) throw lacking;
          for (const child of parsed.index.manifests) walk(child, depth + 1);
        } else {
          const counts = layersAgainstConfig(parsed.manifest, catalog.bytes(parsed.manifest.config.digest));
          if (counts) {
            // Docker 25.0.0's docker save writes OCI manifests without their layers next to a right manifest.json.
            const fix =
              catalog.dockerSaveFile === undefined
                ? 'export the image again'
                : `the archive's manifest.json lists the layers (Docker 25.0.0's docker save writes such manifests): copy by it with mirror copy docker-archive:${catalog.dockerSaveFile}:IMAGE DESTINATION, or save again with a later Docker`;
            throw layersMismatchError(image.name, desc.digest, parsed.manifest.config.digest, counts, fix);
          }
          for (const b of blobDescriptors(parsed.manifest, (d) => catalog.has?.(d) ?? false)) {
            // A blob whose bytes are bad, or whose size is not the one declared here, fails the image now (a dry run says so too).
            const bad = catalog.problem?.(b.digest, b.size);
            if (bad) throw bad;
            if (!blobs.has(b.digest)) blobs.set(b.digest, b);
          }
        }
        manifests.push({ digest: desc.digest, mediaType: parsed.mediaType, size: bytes.byteLength, platform: desc.platform, bytes });
      };
      walk(root, 0);
      plan.manifests = manifests;
      plan.blobs = [...blobs.values()];
      // Verified: the engine may read them.
      for (const m of manifests) served.addManifest({ digest: m.digest, mediaType: m.mediaType, bytes: m.bytes });
      served.addRoot(root);
    } catch (e) {
      if (isRunFatal(e)) throw e;
      plan.error = isMirrorError(e) ? e : new MirrorError('BAD_INPUT', errorMessage(e), { image: image.name, cause: e });
    }
    return plan;
  }

  /**
   * checkConflicts applies the conflict policy to images that claim one destination reference with different
   * digests: with `fail` each of them fails, with `first` the first in bundle order keeps it and the others are held.
   */
  private checkConflicts(plans: PlannedImage[]): void {
    const decisions = settleConflicts(
      plans.map((p) => ({
        source: p.image.name,
        sourceRegistry: p.image.reference?.registry,
        destination: p.dest?.name ?? '',
        repository: p.dest?.repository ?? '',
        tag: p.dest?.tag,
        digest: p.chosen?.descriptor.digest ?? p.image.descriptor.digest,
        failed: p.error !== undefined,
      })),
      this.options.onConflict ?? DEFAULT_CONFLICT_POLICY,
    );
    for (const [i, d] of decisions) {
      const p = plans[i]!;
      p.conflict = d.conflict;
      if (d.error && !p.error) p.error = d.error;
      if (d.conflict.resolution === 'skipped') {
        this.events({ type: 'warning', message: `${p.image.name} not pushed: ${d.conflict.reference} goes to ${d.conflict.winner ?? 'no image'} (first in the bundle)` });
      }
    }
  }

  // ---------------------------------------------------------------- results

  private fail(p: PlannedImage, e: MirrorError): void {
    p.outcome = this.outcome(p, 'failed', e);
    this.events({ type: 'image', source: p.image.name, destination: p.dest?.name ?? '', status: 'failed', error: errorMessage(e) });
  }

  private outcome(p: PlannedImage, status: ImageOutcome['status'], error?: MirrorError): ImageOutcome {
    const root = p.manifests[p.manifests.length - 1];
    return {
      source: p.image.name,
      destination: p.dest?.name,
      sourceReference: p.image.reference,
      destinationImage: p.dest ? { repository: p.dest.repository, tag: p.dest.tag } : undefined,
      conflict: p.conflict,
      digest: root?.digest ?? p.image.descriptor.digest,
      mediaType: root?.mediaType ?? p.image.descriptor.mediaType,
      status,
      error: error ? errorMessage(error) : undefined,
      errorCode: error?.code,
      converted: [p.image.converted, p.chosen?.converted].filter((c) => c !== undefined).join('; ') || undefined,
      children: p.manifests.slice(0, -1).map((m) => ({ digest: m.digest, mediaType: m.mediaType, platform: m.platform })),
      blobs: p.blobs.length,
      size: p.manifests.length === 0 ? undefined : p.blobs.reduce((n, b) => n + b.size, 0) + p.manifests.reduce((n, m) => n + m.size, 0),
    };
  }

  private result(images: ImageOutcome[]): CopyResult {
    const placed = this.placer.stats;
    return {
      images,
      blobs: {
        uploaded: placed.uploaded + this.stats.uploaded,
        mounted: placed.mounted + this.stats.mounted,
        skipped: placed.skipped + this.stats.skipped,
        failed: this.placer.badBlobs.size + this.placer.failedBlobs.size,
        bytesUploaded: placed.bytesUploaded + this.stats.bytesUploaded,
      },
      passes: this.placer.passes,
      durationMs: Date.now() - this.started,
    };
  }
}
