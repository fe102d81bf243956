/**
 * A containerd of the test's own (root, state, socket and config under a temporary directory; no CRI, no runtime,
 * no snapshotter needed: images are imported without unpacking), and `ctr` pointed at it. Always stopped by the test.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, startProcess } from './proc.js';

/** CONTAINERD_READY_TIMEOUT_MS bounds the wait for the socket to answer. */
export const CONTAINERD_READY_TIMEOUT_MS = 15_000;
/** CTR_TIMEOUT_MS bounds one ctr run. */
export const CTR_TIMEOUT_MS = 60_000;

/** TestContainerd is a running containerd. */
export interface TestContainerd {
  /** The gRPC socket. */
  socket: string;
  /** Runs `ctr -a SOCKET -n mirror-test ARGS...` and gives its stdout. */
  ctr(args: string[]): Promise<string>;
  /** Stops containerd and removes its directory. */
  stop(): Promise<void>;
}

/** PLUGINS_OFF are the plugins a content-only containerd does without (none of them is needed to import or export). */
const PLUGINS_OFF = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.internal.v1.opt',
  'io.containerd.runtime.v1.linux',
  'io.containerd.runtime.v2.task',
  'io.containerd.monitor.v1.cgroups',
  'io.containerd.tracing.processor.v1.otlp',
];

/** startContainerd starts containerd with everything under a new temporary directory and waits until ctr answers. */
export async function startContainerd(): Promise<TestContainerd> {
  // A short path: the socket path must stay under 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'ctd-'));
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = ${JSON.stringify(join(dir, 'root'))}`,
      `state = ${JSON.stringify(join(dir, 'state'))}`,
      `disabled_plugins = ${JSON.stringify(PLUGINS_OFF)}`,
      '[grpc]',
      `  address = ${JSON.stringify(socket)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(`${socket}.ttrpc`)}`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const ctr = (args: string[]): Promise<string> => run('ctr', ['-a', socket, '-n', 'mirror-test', ...args], { timeoutMs: CTR_TIMEOUT_MS });
  let started;
  try {
    started = await startProcess({
      command: 'containerd',
      args: ['--config', config],
      logFile: join(dir, 'containerd.log'),
      ready: async () => existsSync(socket) && (await ctr(['version']).then(() => true, () => false)),
      readyTimeoutMs: CONTAINERD_READY_TIMEOUT_MS,
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    socket,
    ctr,
    async stop(): Promise<void> {
      await started.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
