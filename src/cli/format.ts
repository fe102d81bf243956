/** Small formatting helpers for human output. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** formatBytes writes a byte count with a binary unit (`1.50 MiB`, `38.9 KiB`, `162 MiB`). */
export function formatBytes(n: number): string {
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${Math.round(v)} ${UNITS[i]}`;
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[i]}`;
}

/** MIN_RATE_MS: a run (or a window) shorter than this gives no rate; the figure would be noise. */
export const MIN_RATE_MS = 100;

/**
 * formatRate writes a transfer rate, rounded to two significant figures (`12 MiB/s`, `1.2 MiB/s`, `640 KiB/s`);
 * undefined when `ms` is shorter than {@link MIN_RATE_MS}.
 */
export function formatRate(bytes: number, ms: number): string | undefined {
  if (!(ms >= MIN_RATE_MS) || !Number.isFinite(bytes)) return undefined;
  let v = Math.max(0, (bytes * 1000) / ms);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const text = v >= 10 || i === 0 ? String(Math.round(v)) : v.toFixed(1);
  return `${text} ${UNITS[i]}/s`;
}

/** formatDuration writes milliseconds as `0.4s`, `12.3s` or `3m04s` (`<0.1s` below a tenth of a second). */
export function formatDuration(ms: number): string {
  if (ms < 100) return '<0.1s';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m${String(s).padStart(2, '0')}s` : `${m}m${String(s).padStart(2, '0')}s`;
}

/** formatClock writes milliseconds as a clock for progress bars: `0:04`, `12:34`, `1:02:03`. */
export function formatClock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** shortDigest shortens a digest for tables (`sha256:0123456789ab`). */
export function shortDigest(d: string | undefined): string {
  if (!d) return '';
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 12) : d.slice(0, i + 13);
}

/** plural writes `1 image`, `3 images` (`word` + `s`, or the given plural). */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** STATUS_TEXT is the one name of each image status, used in lines, the bar and the summary alike. */
export const STATUS_TEXT = {
  pushed: 'pushed',
  skipped: 'already present',
  'skipped-conflict': 'skipped (conflict)',
  failed: 'failed',
  planned: 'planned',
} as const;

/** statusText names an image status for people (`skipped` is "already present" everywhere). */
export function statusText(status: keyof typeof STATUS_TEXT): string {
  return STATUS_TEXT[status];
}

/**
 * subjectAnd writes `SUBJECT: CAUSE` for a failed image, or the cause alone when it already starts with the subject
 * (a bundle entry without a name is named by where it is, and its cause says where too).
 */
export function subjectAnd(subject: string, cause: string | undefined): string {
  const text = cause ?? '';
  return startsWithSubject(subject, text) ? text : `${subject}: ${text}`;
}

/** startsWithSubject tells whether a cause begins with the subject as a whole word (`a:1 ...`, not `a:10 ...`). */
export function startsWithSubject(subject: string, cause: string): boolean {
  return subject !== '' && cause.startsWith(subject) && (cause.length === subject.length || /[\s:]/.test(cause[subject.length]!));
}

/** clip shortens text to at most `max` characters, keeping its start (`abc...`). */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  return max <= 3 ? text.slice(0, max) : `${text.slice(0, max - 3)}...`;
}

/** clipStart shortens text to at most `max` characters, keeping its end (`...xyz`). */
export function clipStart(text: string, max: number): string {
  if (text.length <= max) return text;
  return max <= 3 ? text.slice(text.length - max) : `...${text.slice(text.length - max + 3)}`;
}
