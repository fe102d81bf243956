/**
 * The progress bar's lines fit 80 columns whatever the figures; rates are rounded; plain lines without a terminal;
 * one name ("already present") for an image that was already there.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { formatDuration, formatRate } from '../../src/cli/format.js';
import { canDrawBar, progressLines, ProgressRenderer, type ProgressSnapshot } from '../../src/cli/progress.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function snap(over: Partial<ProgressSnapshot>): ProgressSnapshot {
  return { phase: 'read', readBytes: 0, readTotal: undefined, sentBytes: 0, sendRate: undefined, imagesDone: 0, imagesTotal: undefined, retries: 0, elapsedMs: 0, etaMs: undefined, ...over };
}

describe('cli/progress', () => {
  it('fits 80 columns and shows read/total, sent, rate, elapsed, ETA, images and retries', () => {
    const typical = progressLines(
      snap({ readBytes: 45.2 * MiB, readTotal: 162 * MiB, sentBytes: 40.1 * MiB, sendRate: 12.4 * MiB, imagesDone: 3, imagesTotal: 12, retries: 2, elapsedMs: 4_000, etaMs: 10_500 }),
      80,
    );
    assert.deepEqual(typical, [
      'reading    [=======                  ]  27%  45.2 MiB of 162 MiB  ETA 0:10',
      '           sent 40.1 MiB at 12 MiB/s  elapsed 0:04  images 3/12  retries 2',
    ]);
    const extremes: ProgressSnapshot[] = [
      snap({ readBytes: 1023.9 * GiB, readTotal: 1023.9 * GiB, sentBytes: 1023.9 * GiB, sendRate: 1023 * MiB, imagesDone: 99999, imagesTotal: 99999, retries: 99999, elapsedMs: 360_000_000, etaMs: 360_000_000 }),
      snap({ phase: 'finish', readBytes: 5 * GiB, readTotal: 5 * GiB, sentBytes: 3 * GiB, imagesDone: 7, imagesTotal: 1200, retries: 1, elapsedMs: 65_000 }),
      snap({ phase: 'reread', readBytes: 1, readTotal: undefined, sentBytes: 0, elapsedMs: 0 }),
    ];
    for (const s of extremes) {
      for (const columns of [80, 60, 120]) {
        for (const line of progressLines(s, columns)) assert.ok(line.length < columns, `${line.length} >= ${columns}: ${line}`);
      }
      const [first, second] = progressLines(s, 80);
      assert.match(second, /sent .*elapsed .*images /);
      if (s.retries > 0) assert.match(second, /retries \d+/);
      if (s.phase === 'finish') assert.match(first, /finishing .*images \d+ of \d+/);
    }
    // Nothing known yet: no bar, no ETA, no rate; images unknown.
    assert.deepEqual(progressLines(snap({ readBytes: 1024 }), 80), ['reading    1.00 KiB read', '           sent 0 B  elapsed 0:00  images 0/?']);
  });

  it('rounds rates to two figures, and gives none for a run shorter than 0.1 s', () => {
    assert.equal(formatRate(637.7 * 1024 * 0.1, 100), '638 KiB/s');
    assert.equal(formatRate(12.345 * MiB, 1000), '12 MiB/s');
    assert.equal(formatRate(1.234 * MiB, 1000), '1.2 MiB/s');
    assert.equal(formatRate(500, 1000), '500 B/s');
    assert.equal(formatRate(10 * MiB, 99), undefined);
    assert.equal(formatRate(10 * MiB, 0), undefined);
    assert.equal(formatDuration(40), '<0.1s');
    assert.equal(formatDuration(1234), '1.2s');
  });

  it('draws a bar only on a terminal that is not TERM=dumb', () => {
    assert.equal(canDrawBar({ isTTY: true }, { TERM: 'xterm-256color' }), true);
    assert.equal(canDrawBar({ isTTY: true }, { TERM: 'dumb' }), false);
    assert.equal(canDrawBar({ isTTY: false }, { TERM: 'xterm' }), false);
    assert.equal(canDrawBar({}, {}), false);
  });

  it('without a terminal: plain lines, "already present", every retry, and a progress line on a timer', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString('utf8')));
    let now = 1_000_000;
    const r = new ProgressRenderer({ quiet: false, debug: false, tty: false, out, plainIntervalMs: 0, now: () => now });
    r.sink({ type: 'phase', phase: 'read', detail: 'bundle b.tar.xz (xz)' });
    r.sink({ type: 'source-bytes', bytes: 10 * MiB, total: 40 * MiB });
    r.sink({ type: 'retry', method: 'PUT', url: 'https://reg:5000/v2/ns/a/blobs/uploads/0f1e2d?_state=REDACTED&digest=sha256:ab', attempt: 1, delayMs: 400, reason: 'HTTP 503' });
    r.sink({ type: 'plan', images: 2 });
    r.sink({ type: 'phase', phase: 'finish' });
    r.sink({ type: 'image', source: 'docker.io/library/a:1', destination: 'reg:5000/ns/library/a:1', digest: `sha256:${'a'.repeat(64)}`, status: 'skipped' });
    r.sink({ type: 'image', source: 'docker.io/library/b:1', destination: 'reg:5000/ns/library/b:1', digest: `sha256:${'b'.repeat(64)}`, status: 'pushed' });
    now += 3_000;
    r.sink({ type: 'bytes', bytes: 3 * MiB });
    const progress = r.plainProgress();
    r.stop();
    assert.equal(
      text,
      [
        'reading bundle b.tar.xz (xz)',
        'retry 1 in 0.4s: HTTP 503 (PUT ns/a/blobs/uploads/)',
        'bundle read; linking blobs and writing manifests',
        'already present: docker.io/library/a:1 -> reg:5000/ns/library/a:1 (sha256:aaaaaaaaaaaa)',
        'pushed: docker.io/library/b:1 -> reg:5000/ns/library/b:1 (sha256:bbbbbbbbbbbb)',
        '',
      ].join('\n'),
    );
    assert.equal(progress, 'progress: bundle read, sent 3.00 MiB, elapsed 0:03, images 2/2, retries 1');
    assert.equal(r.counts.retries, 1);
  });

  it('--quiet and --json: nothing while running', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString('utf8')));
    const r = new ProgressRenderer({ quiet: true, debug: false, tty: true, out });
    r.sink({ type: 'phase', phase: 'read' });
    r.sink({ type: 'source-bytes', bytes: 1, total: 2 });
    r.sink({ type: 'warning', message: 'something' });
    r.sink({ type: 'image', source: 'a', destination: 'b', status: 'pushed' });
    r.stop();
    assert.equal(text, '');
  });
});
