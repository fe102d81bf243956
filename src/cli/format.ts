/** Small formatting helpers for human output. */

/** formatBytes writes a byte count with a binary unit (`1.5 MiB`). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} ${units[i]}` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** formatDuration writes milliseconds as `1.2s` or `3m04s`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return `${m}m${String(s).padStart(2, '0')}s`;
}

/** shortDigest shortens a digest for tables (`sha256:0123456789ab`). */
export function shortDigest(d: string | undefined): string {
  if (!d) return '';
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 12) : d.slice(0, i + 13);
}
