/**
 * deploy/: every file parses (YAML with the `yaml` library, the systemd units as INI, the crontab lines, the
 * Containerfile's instructions), the pieces agree with each other (shards = completions, mounts = the paths the
 * command reads, the ConfigMap's sync.yaml is a valid mirror/v1 file), and the commands of the CronJob, the service
 * and the crontab are accepted by the built binary: run with --dry-run against a test config and a real registry.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { closeAll } from '../../src/net/http.js';
import { parseNativeYaml } from '../../src/sync/config/native.js';
import { buildOciLayout, writeDirectory } from '../../testdata/make-fixtures.js';
import { homeMaker, isolatedEnv } from '../helpers/auth-env.js';
import { runCli } from '../helpers/cli.js';
import { stopAll } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DEPLOY = join(ROOT, 'deploy');

/** files lists every file under a directory. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
}

/** parseIni reads a systemd unit: sections of `Key=Value` lines (comments and blank lines allowed, nothing else). */
function parseIni(text: string, file: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const section = /^\[([A-Za-z]+)\]$/.exec(line);
    if (section) {
      sections.set(section[1]!, (current = new Map()));
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    assert.ok(kv && current, `${file}:${i + 1}: not a Key=Value line in a section: ${line}`);
    current.set(kv[1]!, [...(current.get(kv[1]!) ?? []), kv[2]!]);
  });
  return sections;
}

/** CRON_FIELD is one field of a crontab time spec. */
const CRON_FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/;

/** mirrorArgs gives the arguments after `mirror` in a shell command line (up to a redirection). */
function mirrorArgs(command: string): string[] {
  const words = command.split(/\s+/).filter(Boolean);
  const start = words.findIndex((w) => w === 'mirror' || w.endsWith('/mirror'));
  assert.ok(start >= 0, `no mirror in ${command}`);
  const end = words.findIndex((w, i) => i > start && /^(>>?|2>|\||&&|;)/.test(w));
  return words.slice(start + 1, end < 0 ? undefined : end);
}

describe('deploy/ (Kubernetes, systemd, cron, Containerfile)', function () {
  this.timeout(180_000);
  let work: string;
  let src: TestRegistry;
  let dst: TestRegistry;
  let testConfig: string;
  const home = homeMaker(() => work);

  /** accepted runs `mirror ARGS` with the config and report swapped for the test's, as a dry run. */
  async function accepted(args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
    const swapped = args.map((a, i) => (args[i - 1] === '--config' ? testConfig : args[i - 1] === '--report' ? join(work, 'report.json') : args[i - 1] === '--lock-file' ? join(work, 'sync.lock') : a));
    const r = await runCli([...swapped, '--dry-run'], { env: isolatedEnv(home(), env) });
    assert.equal(r.code, 0, `mirror ${swapped.join(' ')}:\n${r.stderr}${r.stdout}`);
    assert.ok(existsSync(join(work, 'report.json')) || !args.includes('--report'), 'the report is written');
    rmSync(join(work, 'report.json'), { force: true });
  }

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mirror-deploy-'));
    src = await startRegistry();
    dst = await startRegistry();
    const layout = await buildOciLayout({ seed: 'deploy', images: [{ ref: 'quay.io/team/app:1.0', layers: [{ files: 1, sizeBytes: 2000 }] }] });
    await writeDirectory(layout.files, join(work, 'layout'));
    const seeded = await runCli(['push', '--source', join(work, 'layout'), '--private-registry', `http://${src.host}`, '--need-credential=false'], { env: isolatedEnv(home()) });
    assert.equal(seeded.code, 0, seeded.stderr);
    testConfig = join(work, 'sync.yaml');
    writeFileSync(
      testConfig,
      `apiVersion: mirror/v1\nkind: Sync\nregistries:\n  ${src.host}: {tls: {plainHttp: true}}\ndestination:\n  registry: http://${dst.host}/mirror\nsync:\n  - repository: ${src.host}/team/app\n`,
    );
  });
  after(async () => {
    await closeAll();
    await src?.stop();
    await dst?.stop();
    await stopAll();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('every file in deploy/ parses', () => {
    const all = files(DEPLOY);
    assert.ok(all.length >= 7, all.join(', '));
    for (const f of all) {
      const text = readFileSync(f, 'utf8');
      if (/\.ya?ml$/.test(f)) {
        const docs = parseAllDocuments(text);
        for (const d of Array.isArray(docs) ? docs : [docs]) assert.deepEqual(d.errors.map((e) => e.message), [], f);
      } else if (/\.(service|timer)$/.test(f)) parseIni(text, f);
      else if (f.endsWith('.crontab')) {
        for (const line of text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'))) {
          if (/^[A-Z_]+=/.test(line)) continue;
          const fields = line.trim().split(/\s+/);
          for (const field of fields.slice(0, 5)) assert.match(field, CRON_FIELD, `${f}: ${line}`);
          assert.match(fields[5]!, /^[a-z_][a-z0-9_-]*$/, `${f}: a user field (/etc/cron.d format)`);
        }
      } else if (f.endsWith('Containerfile')) {
        const stages = new Set<string>();
        let continued = false;
        for (const line of text.split('\n')) {
          if (line.trim() === '' || line.startsWith('#')) continue;
          if (!continued) {
            const m = /^(FROM|RUN|COPY|WORKDIR|ENV|USER|ENTRYPOINT|CMD|ARG|LABEL|EXPOSE)\s+(.*)$/.exec(line);
            assert.ok(m, `${f}: not an instruction: ${line}`);
            const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?$/.exec(line);
            if (from?.[1]) stages.add(from[1]);
            const copyFrom = /^COPY\s+--from=(\S+)/.exec(line);
            if (copyFrom) assert.ok(stages.has(copyFrom[1]!), `${f}: COPY --from=${copyFrom[1]} names no stage`);
            else if (m[1] === 'COPY') for (const p of m[2]!.split(/\s+/).slice(0, -1)) assert.ok(existsSync(join(ROOT, p)), `${f}: COPY ${p} is not in the project`);
            if (m[1] === 'ENTRYPOINT' || m[1] === 'CMD') JSON.parse(m[2]!);
          }
          continued = line.trimEnd().endsWith('\\');
        }
        const final = text.slice(text.lastIndexOf('\nFROM '));
        assert.match(final, /\nUSER 65532/, 'the image does not run as root');
        assert.match(final, /\nENTRYPOINT \["mirror"\]/);
      } else assert.fail(`${f}: a file the test does not know how to check`);
    }
  });

  it('the CronJob: Indexed, Forbid, shards = completions, Secret as config.json, CA from a ConfigMap; its command is accepted', async () => {
    const docs = parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', 'cronjob.yaml'), 'utf8'));
    const cron = (Array.isArray(docs) ? docs : [docs])[0]!.toJS() as {
      kind: string;
      spec: {
        concurrencyPolicy: string;
        jobTemplate: {
          spec: {
            completionMode: string;
            completions: number;
            template: {
              spec: {
                containers: Array<{ command: string[]; env: Array<{ name: string; value: string }>; volumeMounts: Array<{ name: string; mountPath: string }> }>;
                volumes: Array<{ name: string; configMap?: { name: string }; secret?: { secretName: string; items: Array<{ key: string; path: string }> } }>;
              };
            };
          };
        };
      };
    };
    assert.equal(cron.kind, 'CronJob');
    assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
    const job = cron.spec.jobTemplate.spec;
    assert.equal(job.completionMode, 'Indexed');
    const pod = job.template.spec;
    const c = pod.containers[0]!;
    const cmd = c.command;
    assert.equal(cmd[0], 'mirror');
    assert.equal(Number(cmd[cmd.indexOf('--shards') + 1]), job.completions, '--shards equals completions');
    const mount = (name: string): string => c.volumeMounts.find((m) => m.name === name)!.mountPath;
    const volume = (name: string) => pod.volumes.find((v) => v.name === name)!;
    assert.equal(cmd[cmd.indexOf('--config') + 1], mount('config'));
    const dockerConfig = c.env.find((e) => e.name === 'DOCKER_CONFIG')!.value;
    assert.equal(mount('auth'), dockerConfig);
    assert.deepEqual(volume('auth').secret!.items, [{ key: 'config.json', path: 'config.json' }]);
    const cms = parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', 'configmap.yaml'), 'utf8'));
    const maps = (Array.isArray(cms) ? cms : [cms]).map((d) => d.toJS() as { metadata: { name: string }; data: Record<string, string> });
    assert.equal(volume('config').configMap!.name, maps[0]!.metadata.name);
    assert.equal(volume('ca').configMap!.name, maps[1]!.metadata.name);
    assert.ok('ca.crt' in maps[1]!.data);
    const sync = parseNativeYaml(maps[0]!.data['sync.yaml']!, 'configmap sync.yaml');
    assert.equal(sync.registries.get(sync.destination.host)?.tls?.ca, `${mount('ca')}/ca.crt`);
    const secret = parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', 'secret.yaml'), 'utf8'));
    const s = (Array.isArray(secret) ? secret : [secret])[0]!.toJS() as { metadata: { name: string }; stringData: Record<string, string> };
    assert.equal(s.metadata.name, volume('auth').secret!.secretName);
    JSON.parse(s.stringData['config.json']!);
    for (const index of ['0', '1']) await accepted(cmd.slice(1), { JOB_COMPLETION_INDEX: index });
  });

  it('the systemd service and timer, and the crontab line: their commands are accepted', async () => {
    const unit = parseIni(readFileSync(join(DEPLOY, 'systemd', 'mirror-sync.service'), 'utf8'), 'service');
    assert.equal(unit.get('Service')!.get('Type')![0], 'oneshot');
    await accepted(mirrorArgs(unit.get('Service')!.get('ExecStart')![0]!));
    const timer = parseIni(readFileSync(join(DEPLOY, 'systemd', 'mirror-sync.timer'), 'utf8'), 'timer');
    assert.ok(timer.get('Timer')!.get('OnCalendar'));
    assert.equal(timer.get('Install')!.get('WantedBy')![0], 'timers.target');
    const line = readFileSync(join(DEPLOY, 'cron', 'mirror-sync.crontab'), 'utf8').split('\n').find((l) => /^\d/.test(l))!;
    await accepted(mirrorArgs(line.split(/\s+/).slice(6).join(' ')));
  });
});
