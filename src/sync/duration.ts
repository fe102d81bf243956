/** Durations as cron users write them: `90s`, `45m`, `1h30m`, `2h`, `500ms`, or a number of seconds. */
import { MirrorError } from '../errors/index.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** parseDuration reads a duration into milliseconds; a USAGE error names the flag. */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (t === '' || end !== t.length) throw new MirrorError('USAGE', `invalid ${flag} "${t.slice(0, 30)}": use e.g. 90s, 45m, 1h30m`);
  return Math.round(total);
}
