/** File-tree helpers for tests. */
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** listFiles gives every file under a directory, relative to it, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  await walk(dir);
  return out.sort();
}
