import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { MirrorCommand } from '../cli/base.js';
import { timeoutFlag } from '../cli/flags.js';
import { formatBytes, formatDuration, shortDigest } from '../cli/format.js';
import { buildSideContext, normalizeBooleanArgs, sideFlags } from '../cli/side-flags.js';
import { checkOutputPath, REPORT_STDOUT } from '../cli/report-file.js';
import { parsePlatform } from '../copy/platform.js';
import { EXIT_CODE_HELP, MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { ConfigError, loadSyncConfig, type ConfigSource } from '../sync/config/index.js';
import { parseDuration } from '../sync/duration.js';
import { describeOwner } from '../sync/lock.js';
import type { PruneAction } from '../sync/prune.js';
import { ReportWriter } from '../sync/report.js';
import { DEFAULT_SYNC_JOBS, runSync, type ImageRecord, type SyncRunResult } from '../sync/run.js';
import { parseShard, shardFromEnv, type Shard } from '../sync/shard.js';

/** Boolean flags that also take skopeo's `--flag=true|false` spelling. */
const BOOLEAN_FLAGS = ['src-tls-verify', 'dest-tls-verify', 'referrers', 'preserve-digests', 'all', 'dry-run', 'quiet', 'scoped', 'keep-going', 'prune', 'remove-signatures'];

/** MAX_SUMMARY_FAILURES is how many failures the text summary lists. */
const MAX_SUMMARY_FAILURES = 20;

/** Keep registry mirrors current from a config file: skopeo's sync YAML or the native mirror/v1 file. */
export default class Sync extends MirrorCommand {
  static override summary = 'Keep registry mirrors current from a sync file (skopeo sync YAML or mirror/v1), incrementally, for cron and Kubernetes.';

  static override description = `Two ways to say what to sync:
  mirror sync --config sync.yaml                       the native file (apiVersion: mirror/v1; see docs/sync.example.yaml)
  mirror sync --src yaml --dest docker FILE DEST       skopeo's sync YAML and naming, unchanged
  mirror sync --src docker --dest docker REPO[:TAG] DEST
  mirror sync --src dir --dest docker DIR DEST         every dir: image under DIR (a directory holding manifest.json),
                                                       named by its path: DIR/busybox:1.36 -> DEST/busybox:1.36
  mirror sync --src yaml|docker --dest dir SOURCE DIR  each image into a dir: directory under DIR (DIR/busybox:1.36)

skopeo's naming: the source HOST/PATH:TAG keeps only its last path element under DEST (busybox:1.36) unless --scoped keeps all of it; --append-suffix is added to the tag. A multi-platform index is copied whole, digest kept, with or without --all (skopeo without --all copies only this machine's platform).

Each tag is resolved with one HEAD and compared with the destination: an unchanged image is skipped with no blob request, so a run where nothing changed sends only HEADs. Tags that vanished upstream are kept; --prune deletes destination tags no longer selected (preview it with --dry-run). A failing image does not stop the others (--keep-going is the default): exit 7 lists them. A lock file keeps two runs apart (exit 8, or --wait-lock). --max-duration ends the run cleanly before the next schedule (exit 9; nothing is half-tagged). --shard I/N (or --shards N in a Kubernetes Indexed Job) splits the plan by destination repository.

${EXIT_CODE_HELP}`;

  static override examples = [
    '<%= config.bin %> sync --config /etc/mirror/sync.yaml --log-format json --report /var/log/mirror/sync.json',
    '<%= config.bin %> sync --src yaml --dest docker --dest-creds admin:secret sync.yml 10.0.0.5:5000/mirror',
    '<%= config.bin %> sync --src docker --dest docker --scoped quay.io/prometheus/node-exporter 10.0.0.5:5000',
    '<%= config.bin %> sync --src dir --dest docker /media/usb registry.local:5000/mirror',
    '<%= config.bin %> sync --config sync.yaml --dry-run --prune --json',
    '<%= config.bin %> sync --config sync.yaml --shards 4   # in a Kubernetes Indexed Job',
  ];

  static override args = {
    source: Args.string({ description: 'With --src yaml: the skopeo sync file; with --src docker: HOST/REPO[:TAG]; with --src dir: a directory of dir: images.', required: false }),
    destination: Args.string({ description: 'With --src: the destination registry, HOST[:PORT][/NAMESPACE]; with --dest dir, a directory.', required: false }),
  };

  static override flags = {
    config: Flags.string({ char: 'c', summary: 'The native sync file (apiVersion: mirror/v1).', helpGroup: 'WHAT' }),
    src: Flags.string({ char: 's', summary: "skopeo's source transport: yaml (a sync file), docker (a repository) or dir (a directory of dir: images, named by their paths).", options: ['yaml', 'docker', 'dir', 'oci'], helpGroup: 'WHAT' }),
    dest: Flags.string({ char: 'd', summary: "skopeo's destination transport: docker, or dir (each image a dir: directory under DESTINATION).", options: ['docker', 'dir', 'oci'], helpGroup: 'WHAT' }),
    scoped: Flags.boolean({ summary: 'skopeo naming: keep the whole source reference (HOST/PATH) under DEST, not only its last element.', helpGroup: 'WHAT' }),
    'append-suffix': Flags.string({ summary: 'skopeo naming: add this to every destination tag.', helpGroup: 'WHAT' }),
    all: Flags.boolean({ char: 'a', summary: 'Accepted for skopeo: an index is always copied whole.', allowNo: true, helpGroup: 'WHAT' }),
    'keep-going': Flags.boolean({ summary: 'Accepted for skopeo: a failing image never stops the others.', allowNo: true, helpGroup: 'WHAT' }),
    'preserve-digests': Flags.boolean({ summary: 'Accepted for skopeo: digests are never changed unless --platform asks.', allowNo: true, helpGroup: 'WHAT' }),
    'remove-signatures': Flags.boolean({ summary: 'Accepted for skopeo; use --referrers=false to leave signatures and SBOMs behind.', allowNo: true, helpGroup: 'WHAT' }),
    format: Flags.string({ char: 'f', summary: 'skopeo\'s manifest conversion: not supported (digests are kept).', hidden: true }),
    platform: Flags.string({ summary: 'OS/ARCH[/VARIANT] to copy out of indexes, for every entry; repeatable.', multiple: true, multipleNonGreedy: true, helpGroup: 'WHAT' }),
    referrers: Flags.boolean({ summary: 'Copy signatures, SBOMs and attestations (default: on for a mirror/v1 file, off for skopeo YAML).', allowNo: true, helpGroup: 'WHAT' }),
    'dry-run': Flags.boolean({ summary: 'Print the plan (copy, skip, prune) and write nothing.' }),
    prune: Flags.boolean({ summary: 'Delete destination tags of synced repositories that are no longer selected upstream.' }),
    jobs: Flags.integer({ char: 'j', summary: `Images planned, and images written, at once (default: the file's, else ${DEFAULT_SYNC_JOBS}).`, min: 1, max: 64 }),
    'retry-times': Flags.integer({ summary: 'Retries per request on 408/429/5xx and cut connections (default 5).', min: 0, max: 100 }),
    timeout: timeoutFlag,
    'lock-file': Flags.string({ summary: 'The run lock (default: one per config, destination and shard in the temp directory).', helpGroup: 'CRON' }),
    'no-lock': Flags.boolean({ summary: 'Take no lock (the caller keeps runs apart, e.g. concurrencyPolicy: Forbid).', helpGroup: 'CRON' }),
    'wait-lock': Flags.string({ summary: 'Wait this long for a lock another run holds (90s, 10m) instead of exiting 8.', helpGroup: 'CRON' }),
    'max-duration': Flags.string({ summary: 'End the run cleanly after this long (45m, 1h30m): exit 9, nothing half-tagged.', helpGroup: 'CRON' }),
    'log-format': Flags.string({ summary: 'text, or json: one JSON object per line per image on stdout.', options: ['text', 'json'], default: 'text', helpGroup: 'CRON' }),
    report: Flags.string({ summary: 'Write the whole run as JSON to this file.', helpGroup: 'CRON' }),
    digestfile: Flags.string({ summary: 'skopeo: write "DIGEST DESTINATION" of each synced image to this file.', helpGroup: 'CRON' }),
    quiet: Flags.boolean({ char: 'q', summary: 'Print only failures and the summary.', helpGroup: 'CRON' }),
    shard: Flags.string({ summary: 'Sync only shard I of N (I/N), split by destination repository.', helpGroup: 'SCALE' }),
    shards: Flags.integer({ summary: 'N shards, this one from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).', min: 1, max: 1000, helpGroup: 'SCALE' }),
    ...sideFlags('src', 'source'),
    ...sideFlags('dest', 'destination'),
  };

  override async init(): Promise<void> {
    this.argv = normalizeBooleanArgs(this.argv, BOOLEAN_FLAGS);
    await super.init();
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Sync);
    const json = flags.json;
    const jsonLog = flags['log-format'] === 'json' && !json;
    const quiet = flags.quiet || json;
    const write = (line: string): void => void process.stdout.write(`${line}\n`);
    const log = (record: Record<string, unknown>): void => write(JSON.stringify({ time: new Date().toISOString(), ...record }));
    const sink: EventSink = (e) => {
      if (e.type === 'warning') {
        if (jsonLog) log({ event: 'warning', message: e.message });
        else if (!json) process.stderr.write(`warning: ${e.message}\n`);
      } else if (flags.debug && !json && (e.type === 'debug' || e.type === 'retry')) {
        process.stderr.write(e.type === 'debug' ? `debug: ${e.message}\n` : `debug: retry ${e.attempt} of ${e.method} ${e.url} in ${e.delayMs} ms: ${e.reason}\n`);
      }
    };

    // What to sync.
    let source: ConfigSource;
    if (flags.format !== undefined) throw new MirrorError('USAGE', '--format converts manifests, which sync never does (digests are kept); drop it');
    if (flags.config !== undefined) {
      if (flags.src !== undefined || args.source !== undefined) throw new MirrorError('USAGE', '--config names everything to sync: drop --src and the arguments (or use --src yaml FILE DEST for a skopeo file)');
      source = { kind: 'native', file: flags.config };
    } else {
      if (flags.src === undefined || args.source === undefined || args.destination === undefined) {
        throw new MirrorError('USAGE', 'say what to sync: --config FILE, or --src yaml|docker|dir --dest docker SOURCE DESTINATION');
      }
      if (flags.src !== 'yaml' && flags.src !== 'docker' && flags.src !== 'dir') {
        throw new MirrorError('USAGE', `--src ${flags.src} is not supported: sync reads registries (--src docker, --src yaml) and directories of dir: images (--src dir)`);
      }
      if (flags.src === 'dir' && flags.prune) throw new MirrorError('USAGE', '--prune deletes tags no longer selected upstream; with --src dir there is no upstream to compare with: drop --prune');
      if (flags.dest !== undefined && flags.dest !== 'docker' && !(flags.dest === 'dir' && flags.src !== 'dir')) {
        throw new MirrorError('USAGE', `--dest ${flags.dest} is not supported${flags.src === 'dir' ? ' with --src dir' : ''}: sync writes to registries (--dest docker) and, from registries, to directories of dir: images (--dest dir)`);
      }
      if (flags.dest === 'dir' && flags.prune) throw new MirrorError('USAGE', '--prune deletes tags in a registry; with --dest dir there are none: drop --prune');
      const destTransport = flags.dest === 'dir' ? ('dir' as const) : ('docker' as const);
      const naming = { destination: args.destination, scoped: flags.scoped, appendSuffix: flags['append-suffix'] ?? '', destTransport };
      source =
        flags.src === 'yaml'
          ? { kind: 'skopeo-yaml', file: args.source, ...naming }
          : flags.src === 'dir'
            ? { kind: 'skopeo-dir', path: args.source, ...naming, destTransport: 'docker' }
            : { kind: 'skopeo-docker', repository: args.source, ...naming };
    }
    let shard: Shard | undefined;
    if (flags.shard !== undefined && flags.shards !== undefined) throw new MirrorError('USAGE', 'give --shard I/N or --shards N, not both');
    if (flags.shard !== undefined) shard = parseShard(flags.shard);
    if (flags.shards !== undefined) shard = shardFromEnv(flags.shards);
    const waitMs = flags['wait-lock'] === undefined ? undefined : parseDuration(flags['wait-lock'], '--wait-lock');
    const maxDurationMs = flags['max-duration'] === undefined ? undefined : parseDuration(flags['max-duration'], '--max-duration');
    if (maxDurationMs === 0) throw new MirrorError('USAGE', '--max-duration 0 would stop the run before it starts: give a duration such as 50m, or leave it out');
    const platforms = flags.platform?.map(parsePlatform);

    let config;
    try {
      config = await loadSyncConfig(source);
    } catch (e) {
      if (e instanceof ConfigError && !json) for (const line of e.lines()) process.stderr.write(`${line}\n`);
      throw e;
    }
    for (const w of config.warnings) sink({ type: 'warning', message: w });
    const configName = source.kind === 'skopeo-docker' ? source.repository : resolve(source.kind === 'skopeo-dir' ? source.path : source.file);
    const destName =
      config.destination.dir !== undefined ? `dir:${resolve(config.destination.dir)}` : `${config.destination.host}${config.destination.namespace ? `/${config.destination.namespace}` : ''}`;
    const lockPath =
      flags['lock-file'] ??
      join(tmpdir(), `mirror-sync-${createHash('sha256').update(`${configName}\n${destName}\n${shard ? `${shard.index}/${shard.count}` : ''}`).digest('hex').slice(0, 16)}.lock`);

    // Output files are checked before the lock or any registry (a mistake found after an hour of syncing is lost).
    if (flags.report === REPORT_STDOUT) {
      throw new MirrorError('USAGE', '--report - is not taken by sync, which writes its report as the run goes', { hint: 'name a file, or use --json (the run as one document on stdout) or --log-format json (a line per image)' });
    }
    await checkOutputPath(flags.report);
    if (!flags['dry-run']) await checkOutputPath(flags.digestfile, '--digestfile');
    const report = flags.report === undefined ? undefined : await ReportWriter.open(flags.report, {
      config: configName,
      format: config.format,
      // With its scheme when the config says it, so that `mirror config --from-report` writes the right endpoint.
      destination: config.destination.explicitScheme ? `${config.destination.scheme}://${destName}` : destName,
      dryRun: flags['dry-run'],
      shard: shard ? `${shard.index}/${shard.count}` : undefined,
      started: new Date().toISOString(),
    });
    const digestFile: WriteStream | undefined = flags.digestfile !== undefined && !flags['dry-run'] ? createWriteStream(flags.digestfile) : undefined;
    let digestFileError: Error | undefined;
    digestFile?.on('error', (e) => (digestFileError ??= e));
    const planned: ImageRecord[] = [];
    const onImage = (r: ImageRecord): void => {
      report?.image(r);
      if (digestFile && r.digest !== undefined && r.destination !== undefined && (r.action === 'copied' || r.action === 'skipped')) digestFile.write(`${r.digest} ${r.destination.startsWith('dir:') ? '' : 'docker://'}${r.destination}\n`);
      if (json) {
        if (flags['dry-run']) planned.push(r);
        return;
      }
      if (jsonLog) log({ event: 'image', ...r });
      else if (!quiet || r.action === 'failed') write(imageLine(r));
    };
    const onPrune = (a: PruneAction): void => {
      if (json) return;
      if (jsonLog) log({ event: 'prune', ...a });
      else write(pruneLine(a));
    };

    let result: SyncRunResult;
    try {
      result = await runSync({
        config,
        src: buildSideContext('src', flags, sink),
        dest: buildSideContext('dest', flags, sink),
        jobs: flags.jobs,
        retries: flags['retry-times'],
        platforms,
        referrers: flags.referrers,
        dryRun: flags['dry-run'],
        prune: flags.prune,
        shard,
        maxDurationMs,
        lock: flags['no-lock'] ? undefined : { path: lockPath, waitMs },
        events: sink,
        signal: this.abort.signal,
        onImage,
        onPrune,
        onLockWait: (owner) => sink({ type: 'warning', message: `another sync holds the lock ${lockPath} (${describeOwner(owner)}); waiting up to ${flags['wait-lock']}` }),
      });
    } catch (e) {
      await report?.abandon();
      digestFile?.end();
      throw e;
    }
    if (digestFile) await new Promise<void>((r) => digestFile.end(() => r()));
    await report?.finish(result, result.pruned);
    if (digestFileError !== undefined) sink({ type: 'warning', message: `--digestfile ${flags.digestfile}: not written whole: ${digestFileError.message}` });
    if (json) {
      write(
        JSON.stringify({
          status: result.status,
          exitCode: result.exitCode,
          dryRun: result.dryRun,
          counts: result.counts,
          bytes: result.bytes,
          durationMs: result.durationMs,
          ...(result.dryRun ? { plan: planned } : {}),
          failures: result.failures,
          pruned: result.pruned,
          ...(result.stopped ? { stopped: result.stopped } : {}),
          ...(result.fatal ? { error: result.fatal.describe(), errorCode: result.fatal.code } : {}),
        }),
      );
    } else if (jsonLog) {
      log({ event: 'summary', status: result.status, exitCode: result.exitCode, counts: result.counts, bytes: result.bytes, seconds: result.durationMs / 1000, ...(result.stopped ? { stopped: result.stopped } : {}) });
    } else {
      for (const line of summaryLines(result)) write(line);
    }
    if (result.fatal !== undefined) {
      if (json) {
        process.exitCode = result.exitCode;
        return;
      }
      throw result.fatal;
    }
    process.exitCode = result.exitCode;
  }
}

/** imageLine is one image as a text line. */
function imageLine(r: ImageRecord): string {
  const to = r.destination ? ` -> ${r.destination}` : '';
  switch (r.action) {
    case 'copied':
      return `copied  ${r.source}${to} ${shortDigest(r.digest)} (${formatBytes(r.bytes)}, ${r.seconds.toFixed(1)}s)${r.converted ? ` note: ${r.converted}` : ''}`;
    case 'skipped':
      return `skipped ${r.source}${to} ${shortDigest(r.digest)} (unchanged)`;
    case 'copy':
      return `copy    ${r.source}${to} ${shortDigest(r.digest)}`;
    case 'skip':
      return `skip    ${r.source}${to} ${shortDigest(r.digest)} (unchanged)`;
    case 'failed':
      return `FAILED  ${r.source}${to}: ${r.error ?? ''}`;
  }
}

/** pruneLine is one prune action as a text line. */
function pruneLine(a: PruneAction): string {
  const what = `${a.repository}:${a.tags.join(',')} ${shortDigest(a.digest)}`;
  switch (a.action) {
    case 'deleted':
      return `pruned  ${what}`;
    case 'would delete':
      return `prune   ${what}`;
    case 'kept':
      return `kept    ${what}: ${a.reason ?? ''}`;
    case 'failed':
      return `FAILED  prune ${what}: ${a.reason ?? ''}`;
  }
}

/** summaryLines is the text summary of a run. */
function summaryLines(r: SyncRunResult): string[] {
  const c = r.counts;
  const lines: string[] = [];
  const prune = c.pruned + c.pruneKept + c.pruneFailed > 0 ? `; ${c.pruned} tag digest(s) ${r.dryRun ? 'to prune' : 'pruned'}${c.pruneKept ? `, ${c.pruneKept} kept (still tagged)` : ''}` : '';
  if (r.dryRun) lines.push(`plan: ${c.copy} to copy, ${c.skip} unchanged, ${c.failed} failed${prune} (dry run: nothing written)`);
  else {
    lines.push(
      `${r.status === 'ok' ? 'synced' : r.status === 'stopped' ? 'stopped' : r.fatal !== undefined ? 'sync ended early by the error below' : 'sync finished with failures'}: ${c.copied} copied, ${c.skipped} unchanged, ${c.failed} failed${prune}; ` +
        `${formatBytes(r.bytes)} sent in ${formatDuration(r.durationMs)}`,
    );
  }
  if (r.fatal !== undefined) lines.push('images not reached are left as they were; the next run goes on from there');
  if (r.stopped) {
    lines.push(`stopped at --max-duration after ${formatDuration(r.stopped.afterMs)}: ${c.copied + c.skipped + c.failed} image(s) done, ${r.stopped.inFlight} in flight aborted (nothing half-tagged); the next run goes on from there`);
  }
  if (r.failures.length > 0) {
    lines.push(`failed (${c.failed}):`);
    for (const f of r.failures.slice(0, MAX_SUMMARY_FAILURES)) lines.push(`  ${f.source}${f.destination ? ` -> ${f.destination}` : ''}: ${f.error ?? ''}`);
    if (c.failed > MAX_SUMMARY_FAILURES) lines.push(`  ... and ${c.failed - MAX_SUMMARY_FAILURES} more (see --report or --log-format json)`);
  }
  return lines;
}
