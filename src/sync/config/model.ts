/**
 * What a sync config says, once read: the same model for skopeo's sync YAML and for the native `mirror/v1` file.
 * Everything here is plain data; `../plan.ts` turns it into copy jobs.
 */
import type { PlatformSpec } from '../../copy/platform.js';
import type { TagVersionRange } from '../semver.js';

/** CredentialRef says where a registry's credential comes from (native files never hold the secret itself). */
export type CredentialRef =
  /** Two environment variables, read when the registry asks. */
  | { kind: 'env'; username: string; password: string }
  /** A file holding `user:password`, or a token (sent as a bearer token). */
  | { kind: 'file'; path: string }
  /** A Docker `config.json` (its `auths`, `credHelpers`, `credsStore`). */
  | { kind: 'docker-config'; path: string }
  /** A Docker credential helper, `docker-credential-NAME`. */
  | { kind: 'helper'; name: string }
  /** skopeo's sync YAML: `credentials: {username, password}` written in the file. */
  | { kind: 'inline'; username: string; password: string };

/** RegistryConfig is how to reach one registry host. Absent fields keep the command line's settings. */
export interface RegistryConfig {
  host: string;
  credentials?: CredentialRef | undefined;
  tls?:
    | {
        /** CA certificate file (PEM), added to the system roots. */
        ca?: string | undefined;
        clientCert?: string | undefined;
        clientKey?: string | undefined;
        /** certs.d-style directory (skopeo's `cert-dir`). */
        certDir?: string | undefined;
        /** Skip certificate checks. */
        insecure?: boolean | undefined;
        /** Plain HTTP. */
        plainHttp?: boolean | undefined;
        /** skopeo's `tls-verify: false`: no certificate checks, plain HTTP accepted. */
        verify?: boolean | undefined;
      }
    | undefined;
  /** Per-host request bounds. */
  requests?: { concurrency?: number | undefined; perSecond?: number | undefined } | undefined;
  /** Where it is written in the file, for messages. */
  origin?: string | undefined;
}

/** TagRule selects tags of a listed repository. */
export interface TagRule {
  /** Keep a tag only when one of these matches (none: every tag). */
  include: RegExp[];
  /** Drop a tag when one of these matches. */
  exclude: RegExp[];
  /** Keep only tags that read as versions within this range. */
  semver?: TagVersionRange | undefined;
  /** Then keep the newest N: by version, or by the `created` time in each image's config. */
  newest?: { count: number; by: 'semver' | 'created' } | undefined;
}

/** SyncEntry is one repository, or every repository under a prefix, and what to take from it. */
export interface SyncEntry {
  /** Where it is written (`sync.yaml:12:5`) and what it names, for messages. */
  origin: string;
  label: string;
  /** The source registry host (`quay.io`, `docker.io`). */
  registry: string;
  /**
   * The key of the config's registries whose settings (credentials, TLS) reach `registry` for this entry. skopeo's
   * YAML keys one host several times (`HOST/team-a`, `HOST/team-b`), each with its own settings. Default: `registry`.
   */
  settings?: string | undefined;
  /** `repository`: one repository; `prefix`: every repository whose path is `path` or under `path/` (catalog). */
  kind: 'repository' | 'prefix';
  /** Repository path, or the prefix (`''`: the whole registry). */
  path: string;
  /** Tags written out (no listing), or `undefined` to list the repository's tags and apply `rule`. */
  tags?: string[] | undefined;
  /** The rule for listed tags; undefined with `tags` undefined means every tag. */
  rule?: TagRule | undefined;
  /** Digests always copied (by digest, no tag). */
  digests: string[];
  /** Platforms to copy out of indexes (undefined: the index whole). */
  platforms?: PlatformSpec[] | undefined;
  /** Copy referrers (signatures, SBOMs). Undefined: the run's default. */
  referrers?: boolean | undefined;
}

/** Naming is how a source image's name becomes its destination name. */
export type Naming =
  /** skopeo sync: the source reference (`HOST/PATH:TAG`), its last path element unless `scoped`, under the destination, then the suffix. */
  | { kind: 'skopeo'; scoped: boolean; appendSuffix: string }
  /** push's mapping: the host dropped (kept as `host_port` with `keepRegistryHost`), the path kept, rewrite rules, under the namespace. */
  | { kind: 'push'; keepRegistryHost: boolean; rewrite: Array<{ match: RegExp; replace: string }> };

/** DestinationConfig is where everything goes. */
export interface DestinationConfig {
  host: string;
  namespace: string;
  scheme: 'http' | 'https';
  /** True when the scheme was written (`http://`), so plain HTTP was asked for. */
  explicitScheme: boolean;
  naming: Naming;
  /** `--dest dir DEST`: the directory each image is written under, as a dir: image (then `host` and `namespace` are empty). */
  dir?: string | undefined;
}

/** SyncDefaults are the run's defaults from the file (flags win). */
export interface SyncDefaults {
  jobs?: number | undefined;
  platforms?: PlatformSpec[] | undefined;
  referrers?: boolean | undefined;
  retries?: number | undefined;
}

/** SyncConfig is a whole sync config. */
export interface SyncConfig {
  /** `skopeo` (skopeo's sync YAML or `--src docker REPO`) or `native` (`mirror/v1`). */
  format: 'skopeo' | 'native';
  /** The file read (or the source argument), for messages. */
  file: string;
  defaults: SyncDefaults;
  /** Per-host settings, by host. */
  registries: Map<string, RegistryConfig>;
  destination: DestinationConfig;
  entries: SyncEntry[];
  /** `--src dir SOURCE`: the directory whose dir: images are synced (then `entries` is empty). */
  sourceDir?: string | undefined;
  /** Things the file says that are accepted but worth knowing (unknown skopeo keys). */
  warnings: string[];
}
