/**
 * Building the {@link MirrorPlan} from what the user gives: reports (`--from-report`, several allowed) or a
 * hand-made mirror (`--mirror https://HOST:PORT/NS` and `--source-registry`), plus TLS files and `--no-fallback`.
 * Whatever would make a node pull the wrong image is said before anything is written: renamed repositories and
 * images a report did not push are left out with a warning, images that lost a conflict to another registry's
 * image of the same name are named.
 */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { MirrorError } from '../errors/index.js';
import type { EventSink } from '../events/index.js';
import { noEvents } from '../events/index.js';
import { parseTarget, registryPathComponent } from '../reference/destination.js';
import { DEFAULT_REGISTRY, isValidHost } from '../reference/reference.js';
import { applyPrefix, buildRoutes, derivePrefix, type MirrorEndpoint, type MirrorPlan, type MirrorTls, type PemFile, type RouteInput } from './model.js';
import { type MirrorReport, quote, readReport } from './report.js';

/** MAX_PEM_BYTES bounds a certificate or key file. */
export const MAX_PEM_BYTES = 1024 * 1024;

/** LIST_IN_WARNING is how many image names a warning lists before "and N more". */
const LIST_IN_WARNING = 3;

/** PlanOptions are the inputs of {@link buildPlan}. */
export interface PlanOptions {
  /** `--from-report` files, in the order given (their mirrors are tried in that order). */
  reports?: readonly string[] | undefined;
  /**
   * `--mirror`: with no report, the mirror (`[http[s]://]HOST[:PORT][/v2][/NS]`); with reports, the address nodes
   * reach the registry at (scheme and host only), replacing the reports'.
   */
  mirror?: string | undefined;
  /** `--source-registry`: with no report, the registries mirrored there; with reports, only these are kept. */
  sourceRegistries?: readonly string[] | undefined;
  /** `--keep-registry-host` (with `--mirror`): images were pushed with their registry host kept. Default: false. */
  keepRegistryHost?: boolean | undefined;
  /** `--plain-http`: the mirror speaks plain HTTP. Default: false. */
  plainHttp?: boolean | undefined;
  /** `--cacert`, `--cert`, `--key`: TLS files for the mirror. */
  cacert?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  /** `--insecure`: do not verify the mirror's certificate. Default: false. */
  insecureSkipVerify?: boolean | undefined;
  /** False with `--no-fallback`: nodes never go to the source registries. Default: true. */
  fallback?: boolean | undefined;
  events?: EventSink | undefined;
}

/** usage builds a USAGE error. */
function usage(message: string, hint?: string): MirrorError {
  return new MirrorError('USAGE', message, { hint });
}

/** normalizeRegistry lower-cases a registry host and writes Docker Hub's aliases as `docker.io`. */
export function normalizeRegistry(host: string): string {
  const h = host.toLowerCase();
  return h === 'index.docker.io' || h === 'registry-1.docker.io' ? DEFAULT_REGISTRY : h;
}

/** parseMirror reads `--mirror`, never echoing credentials written into it. */
function parseMirror(text: string, plainHttp: boolean): { endpoint: MirrorEndpoint; namespace: string; explicitScheme: boolean } {
  if (/^[^/]*@|:\/\/[^/]*@/.test(text)) throw usage('credentials do not go in --mirror', 'use --username with --password-stdin, or --docker-config FILE');
  if (text.trim().startsWith('oci:')) throw usage('--mirror is a registry, not an OCI layout');
  try {
    const t = parseTarget(text, { plainHttp });
    if (t.kind !== 'registry') throw usage('--mirror is a registry, not an OCI layout');
    return { endpoint: { scheme: t.scheme, host: normalizeRegistry(t.host) }, namespace: t.namespace, explicitScheme: t.explicitScheme || plainHttp };
  } catch (e) {
    if (e instanceof MirrorError) {
      throw new MirrorError('USAGE', e.message.replace('--private-registry', '--mirror'), {
        hint: 'use https://HOST:PORT/NAMESPACE (or the containerd form https://HOST:PORT/v2/NAMESPACE, or http:// for plain HTTP)',
      });
    }
    throw e;
  }
}

/** readPem reads a certificate or key file given on the command line. */
async function readPem(file: string, flag: string, kind: 'certificate' | 'key'): Promise<PemFile> {
  const path = resolve(file);
  let content: Buffer;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new MirrorError('BAD_INPUT', `${flag} ${file} is not a file`, { file });
    if (s.size > MAX_PEM_BYTES) throw new MirrorError('BAD_INPUT', `${flag} ${file} is larger than ${MAX_PEM_BYTES} bytes`, { file });
    content = await readFile(path);
  } catch (e) {
    if (e instanceof MirrorError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new MirrorError('BAD_INPUT', `cannot read ${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`, { file, cause: e });
  }
  const text = content.toString('latin1');
  const ok = kind === 'certificate' ? text.includes('-----BEGIN CERTIFICATE-----') : /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text);
  if (!ok) throw new MirrorError('BAD_INPUT', `${flag} ${file} is not a PEM ${kind === 'certificate' ? 'certificate' : 'private key'}`, { file });
  return { path, content };
}

/** listNames writes a few image names and how many more. */
function listNames(names: readonly string[]): string {
  const shown = names.slice(0, LIST_IN_WARNING).map((n) => quote(n, 120).slice(1, -1));
  return names.length > LIST_IN_WARNING ? `${shown.join(', ')} and ${names.length - LIST_IN_WARNING} more` : shown.join(', ');
}

/** routesFromReports turns the reports' images into route inputs, warning about what is left out. */
function routesFromReports(reports: readonly MirrorReport[], keep: Set<string> | undefined, events: EventSink): RouteInput[] {
  const inputs: RouteInput[] = [];
  for (const report of reports) {
    if (report.dryRun) events({ type: 'warning', message: `report ${report.file} is of a dry run: its images are not in ${report.endpoint.host} yet` });
    const renamed: string[] = [];
    const itself: string[] = [];
    const retagged: string[] = [];
    for (const image of report.images) {
      if (keep !== undefined && !keep.has(image.source.registry)) continue;
      if (image.source.registry === report.endpoint.host) {
        itself.push(image.name);
        continue;
      }
      const prefix = derivePrefix(image.source.repository, image.destination.repository);
      if (prefix === undefined) {
        renamed.push(`${image.name} (at ${image.destination.repository})`);
        continue;
      }
      inputs.push({ source: image.source.registry, endpoint: report.endpoint, prefix, repository: image.source.repository });
      const { tag } = image.source;
      if (tag !== undefined && image.destination.tag !== undefined && image.destination.tag !== tag) retagged.push(`${image.name} (as :${image.destination.tag})`);
    }
    if (retagged.length > 0) {
      events({
        type: 'warning',
        message: `report ${report.file}: ${retagged.length} image(s) were given other tags at the mirror, so a pull by the original tag does not find them there (by digest it does): ${listNames(retagged)}`,
      });
    }
    if (renamed.length > 0) {
      events({
        type: 'warning',
        message: `report ${report.file}: left out ${renamed.length} image(s) whose repository was renamed, which a registry mirror cannot express: ${listNames(renamed)}`,
      });
    }
    if (itself.length > 0) {
      events({ type: 'warning', message: `report ${report.file}: left out ${itself.length} image(s) copied within ${report.endpoint.host} itself: ${listNames(itself)}` });
    }
    const notThere = report.leftOut.filter((i) => keep === undefined || keep.has(tryRegistry(i.name) ?? ''));
    if (notThere.length > 0) {
      const statuses = [...new Set(notThere.map((i) => i.status))].join(', ');
      events({
        type: 'warning',
        message: `report ${report.file}: ${notThere.length} image(s) are not in the mirror (${statuses}): ${listNames(notThere.map((i) => i.name))}`,
      });
    }
  }
  return inputs;
}

/** tryRegistry gives the registry of an image name, if it parses. */
function tryRegistry(name: string): string | undefined {
  const slash = name.indexOf('/');
  if (slash < 0) return DEFAULT_REGISTRY;
  const first = name.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? normalizeRegistry(first) : DEFAULT_REGISTRY;
}

/**
 * conflictWarnings names images that lost a conflict to an image of another registry: through the mirror, a pull
 * of the loser's name gives the winner's image (same destination reference).
 */
function conflictWarnings(reports: readonly MirrorReport[], routed: Set<string>, events: EventSink): void {
  for (const report of reports) {
    for (const i of report.leftOut) {
      if (i.status !== 'skipped-conflict' || i.winner === undefined) continue;
      const mine = tryRegistry(i.name);
      const theirs = tryRegistry(i.winner);
      if (mine === undefined || theirs === undefined || mine === theirs || !routed.has(mine)) continue;
      events({
        type: 'warning',
        message: `report ${report.file}: ${quote(i.name, 120)} lost its destination to ${quote(i.winner, 120)}: through this mirror a pull of ${quote(i.name, 120)} gives the other image; push with --keep-registry-host to keep registries apart`,
      });
    }
  }
}

/** buildPlan reads the inputs and gives the plan, or a USAGE / BAD_INPUT error naming what is wrong. */
export async function buildPlan(options: PlanOptions): Promise<MirrorPlan> {
  const events = options.events ?? noEvents;
  const reportFiles = options.reports ?? [];
  const sources = (options.sourceRegistries ?? []).map((s) => {
    const h = s.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (!isValidHost(h)) throw usage(`--source-registry ${quote(s)} is not a registry host (HOST[:PORT], e.g. gcr.io)`);
    return normalizeRegistry(h);
  });
  const mirror = options.mirror === undefined ? undefined : parseMirror(options.mirror, options.plainHttp ?? false);
  let inputs: RouteInput[];
  let origin: string;
  if (reportFiles.length > 0) {
    if (options.keepRegistryHost) throw usage('--keep-registry-host goes with --mirror; a report says how its images were mapped');
    if (mirror && mirror.namespace !== '') {
      throw usage('with --from-report, --mirror gives only the address nodes reach the registry at (https://HOST:PORT); the namespace comes from the report');
    }
    const reports: MirrorReport[] = [];
    for (const f of reportFiles) reports.push(await readReport(f));
    const hosts = [...new Set(reports.map((r) => r.endpoint.host))];
    if (mirror && hosts.length > 1) throw usage(`the reports name ${hosts.length} registries (${hosts.join(', ')}); --mirror can stand for only one`);
    const adjusted = reports.map((r): MirrorReport => {
      if (mirror) {
        return { ...r, endpoint: { host: mirror.endpoint.host, scheme: mirror.explicitScheme ? mirror.endpoint.scheme : r.endpoint.scheme }, schemeKnown: r.schemeKnown || mirror.explicitScheme };
      }
      if (options.plainHttp) return { ...r, endpoint: { ...r.endpoint, scheme: 'http' }, schemeKnown: true };
      return r;
    });
    for (const r of adjusted) {
      if (!r.schemeKnown) {
        events({
          type: 'warning',
          message: `report ${r.file} does not say whether ${r.endpoint.host} speaks https or plain http: https assumed (--plain-http, or --mirror http://${r.endpoint.host}, for plain http)`,
        });
      }
    }
    const keep = sources.length > 0 ? new Set(sources) : undefined;
    inputs = routesFromReports(adjusted, keep, events);
    if (keep) {
      const found = new Set(inputs.map((i) => i.source));
      const absent = sources.filter((s) => !found.has(s));
      if (absent.length > 0) throw new MirrorError('BAD_INPUT', `--source-registry ${absent.join(', ')}: no image of ${absent.length > 1 ? 'these registries' : 'it'} is in the mirror according to ${reportFiles.join(', ')}`);
    }
    conflictWarnings(adjusted, new Set(inputs.map((i) => i.source)), events);
    origin = `${reportFiles.length > 1 ? 'reports' : 'report'} ${reportFiles.join(', ')}`;
    if (inputs.length === 0) {
      throw new MirrorError('BAD_INPUT', `nothing to configure: no image of ${reportFiles.join(', ')} is in a registry mirror`, {
        hint: 'give the report of a push, copy or sync that went through',
      });
    }
  } else if (mirror) {
    if (sources.length === 0) throw usage('--mirror needs --source-registry: the registries whose images were pushed there (repeat it, e.g. --source-registry gcr.io --source-registry docker.io)');
    inputs = sources.map((source) => {
      if (source === mirror.endpoint.host) throw usage(`--source-registry ${source} is the mirror itself`);
      let prefix = mirror.namespace;
      if (options.keepRegistryHost) {
        const component = registryPathComponent(source);
        if (component === undefined) throw usage(`--keep-registry-host: ${source} has no repository spelling (an IPv6 literal)`);
        prefix = applyPrefix(mirror.namespace, component);
      }
      return { source, endpoint: mirror.endpoint, prefix };
    });
    const url = `${mirror.endpoint.scheme}://${mirror.endpoint.host}${mirror.namespace ? `/${mirror.namespace}` : ''}`;
    origin = `--mirror ${url}${options.keepRegistryHost ? ' --keep-registry-host' : ''} ${[...new Set(sources)].sort().map((s) => `--source-registry ${s}`).join(' ')}`;
  } else {
    throw usage('say what was mirrored: --from-report FILE (a report of mirror push, copy or sync), or --mirror https://HOST:PORT/NAMESPACE with --source-registry');
  }
  const routes = buildRoutes(inputs);
  const https = routes.some((r) => r.endpoint.scheme === 'https');
  if (!https && (options.cacert !== undefined || options.cert !== undefined || options.insecureSkipVerify)) {
    throw usage('--cacert, --cert, --key and --insecure are for an https mirror; this one is plain http');
  }
  if ((options.cert === undefined) !== (options.key === undefined)) throw usage('--cert and --key go together');
  const tls: MirrorTls = {
    ca: options.cacert === undefined ? undefined : await readPem(options.cacert, '--cacert', 'certificate'),
    cert: options.cert === undefined ? undefined : await readPem(options.cert, '--cert', 'certificate'),
    key: options.key === undefined ? undefined : await readPem(options.key, '--key', 'key'),
    insecureSkipVerify: options.insecureSkipVerify ?? false,
  };
  return { routes, tls, fallback: options.fallback ?? true, origin };
}
