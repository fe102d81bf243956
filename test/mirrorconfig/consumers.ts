/**
 * The real consumers of the generated files, run by the tests on this machine: Debian's containerd (its own root,
 * state, socket and config under a temporary directory; started and always stopped by the test) driven by `ctr`,
 * and podman (`--storage-driver vfs` with its root and runroot under a temporary directory). skopeo is run directly.
 * Every run is bounded in time; every process started is stopped.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBounded, type RunResult } from '../auth/support.js';
import { startProcess, type Started } from '../helpers/proc.js';

/** CONSUMER_TIMEOUT_MS bounds one ctr, podman or skopeo run. */
export const CONSUMER_TIMEOUT_MS = 90_000;

/** isRoot tells whether the tests can start containerd (it needs root for its snapshotter). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Containerd is a running containerd of a test. */
export interface Containerd {
  /** Its gRPC socket. */
  socket: string;
  /** Runs `ctr -a SOCKET -n NAMESPACE ARGS...` with `env` added to a clean environment. */
  ctr(args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult>;
  /** Stops containerd and removes its directory. */
  stop(): Promise<void>;
}

/** CONTAINERD_NAMESPACE is the containerd namespace the tests pull into. */
export const CONTAINERD_NAMESPACE = 'mirror-config-test';

/** cleanEnv is the environment of a consumer run: no proxy or registry settings from the developer's shell. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy', 'CONTAINERS_REGISTRIES_CONF', 'REGISTRY_AUTH_FILE', 'DOCKER_CONFIG']) {
    delete env[k];
  }
  return { ...env, ...extra };
}

/** proxyEnv sends every connection a consumer makes to a non-loopback host through `proxyUrl` (Go never proxies loopback). */
export function proxyEnv(proxyUrl: string): NodeJS.ProcessEnv {
  return { HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl, https_proxy: proxyUrl, http_proxy: proxyUrl };
}

/** startContainerd starts containerd with everything under a new temporary directory, and waits until `ctr version` answers. */
export async function startContainerd(): Promise<Containerd> {
  const dir = await mkdtemp(join(tmpdir(), 'mirror-containerd-'));
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = ${JSON.stringify(join(dir, 'root'))}`,
      `state = ${JSON.stringify(join(dir, 'state'))}`,
      // Only what pulling needs: no CRI, no snapshotters that probe devices.
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
      '[grpc]',
      `  address = ${JSON.stringify(socket)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(join(dir, 'containerd.ttrpc.sock'))}`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(join(dir, 'opt'))}`,
      '',
    ].join('\n'),
  );
  let started: Started;
  try {
    started = await startProcess({
      command: 'containerd',
      args: ['--config', config],
      env: cleanEnv(),
      logFile: join(dir, 'containerd.log'),
      ready: async () => (await runBounded('ctr', ['-a', socket, 'version'], { timeoutMs: 5_000, env: cleanEnv() })).code === 0,
      readyTimeoutMs: 20_000,
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    socket,
    ctr: (args, env = {}) => runBounded('ctr', ['-a', socket, '-n', CONTAINERD_NAMESPACE, ...args], { timeoutMs: CONSUMER_TIMEOUT_MS, env: cleanEnv(env) }),
    async stop() {
      await started.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Podman runs podman with its own storage (vfs) under a temporary directory. */
export interface Podman {
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult>;
  /** Removes the storage. */
  cleanup(): Promise<void>;
}

/** makePodman prepares a podman whose root and runroot are under a new temporary directory. */
export async function makePodman(): Promise<Podman> {
  const dir = await mkdtemp(join(tmpdir(), 'mirror-podman-'));
  const base = ['--storage-driver', 'vfs', '--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--events-backend', 'none', '--cgroup-manager', 'cgroupfs'];
  return {
    run: (args, env = {}) => runBounded('podman', [...base, ...args], { timeoutMs: CONSUMER_TIMEOUT_MS, env: cleanEnv({ TMPDIR: dir, ...env }) }),
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** skopeo runs skopeo with a clean environment plus `env`. */
export function skopeo(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runBounded('skopeo', args, { timeoutMs: CONSUMER_TIMEOUT_MS, env: cleanEnv(env) });
}
