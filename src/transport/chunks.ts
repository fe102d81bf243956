/** Small helpers over byte streams (async iterables of chunks) that several sources share. */

/** oneChunk gives `data` as a stream of one chunk (none when it is empty). */
export async function* oneChunk(data: Uint8Array): AsyncGenerator<Uint8Array, void, undefined> {
  if (data.byteLength > 0) yield data;
}

/**
 * skipBytes drops the first `offset` bytes of a stream: a body that cannot be opened at an offset (a file read from
 * its start, a layer compressed again from its start) is reopened whole and the bytes already delivered are dropped.
 */
export async function* skipBytes(source: AsyncIterable<Uint8Array>, offset: number): AsyncGenerator<Uint8Array, void, undefined> {
  let left = offset;
  for await (const chunk of source) {
    if (left >= chunk.byteLength) {
      left -= chunk.byteLength;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}
