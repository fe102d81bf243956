/**
 * Runs `mirror` commands one after the other in the session it was started in (under `dbus-run-session` with an
 * unlocked gnome-keyring), and prints a JSON report on stdout: for each step its exit code and output, and the text
 * of the files asked for (e.g. config.json) after that step. argv[2] is a JSON file: `{steps: [{args, input?, read?}]}`.
 */
import { readFileSync } from 'node:fs';
import { runCli } from '../../helpers/cli.js';

interface Step {
  args: string[];
  input?: string;
  /** Files whose text is reported after this step (null when missing). */
  read?: string[];
}

const plan = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as { steps: Step[] };
const results: unknown[] = [];
for (const step of plan.steps) {
  const started = Date.now();
  const r = await runCli(step.args, { input: step.input, env: process.env, timeoutMs: 60_000 });
  const files: Record<string, string | null> = {};
  for (const f of step.read ?? []) {
    try {
      files[f] = readFileSync(f, 'utf8');
    } catch {
      files[f] = null;
    }
  }
  results.push({ code: r.code, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started, files });
}
process.stdout.write(JSON.stringify({ results }));
process.exit(0);
