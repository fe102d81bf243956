/** ByteBudget bounds how many bytes may be held in memory at once; `acquire` waits until there is room. */
export class ByteBudget {
  private used = 0;
  private readonly waiters: Array<{ n: number; resolve: () => void }> = [];

  /** @param limit the most bytes held at once; one request larger than the limit is let through alone. */
  constructor(readonly limit: number) {}

  /** acquire waits until `n` bytes fit, then takes them. */
  async acquire(n: number, signal?: AbortSignal): Promise<void> {
    if (this.fits(n) && this.waiters.length === 0) {
      this.used += n;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        n,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** release gives back `n` bytes and wakes waiters that now fit. */
  release(n: number): void {
    this.used = Math.max(0, this.used - n);
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.n)) {
      const w = this.waiters.shift()!;
      this.used += w.n;
      w.resolve();
    }
  }

  /** inUse is the number of bytes held now. */
  get inUse(): number {
    return this.used;
  }

  private fits(n: number): boolean {
    return this.used === 0 || this.used + n <= this.limit;
  }
}

/** collect reads a stream into one buffer. */
export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const c of stream) {
    chunks.push(c);
    total += c.byteLength;
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
