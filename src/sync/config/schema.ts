/** The JSON schema of the native sync file, written from the same shape that validates it. */
import { writeFile } from 'node:fs/promises';
import { API_VERSION, NATIVE_SHAPE } from './native.js';
import { toJsonSchema } from './shape.js';

/** SCHEMA_ID is the schema's `$id`. */
export const SCHEMA_ID = 'https://mirror.example/schemas/sync.schema.json';

/** syncJsonSchema gives the JSON schema (draft 2020-12) of a `mirror/v1` sync file. */
export function syncJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: SCHEMA_ID,
    title: `mirror sync file (${API_VERSION})`,
    ...toJsonSchema(NATIVE_SHAPE),
  };
}

/** syncJsonSchemaText is the schema as written to docs/sync.schema.json. */
export function syncJsonSchemaText(): string {
  return `${JSON.stringify(syncJsonSchema(), null, 2)}\n`;
}

/** writeSyncSchema writes the schema to a file (`npm run sync-schema`). */
export async function writeSyncSchema(file: string): Promise<void> {
  await writeFile(file, syncJsonSchemaText());
}
