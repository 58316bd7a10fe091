// <instance>.head.json: a copy of the instance's newest durable checkpoint or seal, replaced
// atomically. verify compares it with the segments, which catches removal of the newest records.

import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { headFileName, TEMP_SUFFIX } from './segment-files.js';

export const HEAD_FORMAT = 'warden-transcript-head';

export function parseHeadFile(text: string): string | undefined {
  try {
    const v = JSON.parse(text) as { format?: unknown; jws?: unknown };
    return v.format === HEAD_FORMAT && typeof v.jws === 'string' ? v.jws : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces the head file atomically (write a temp file, fsync, rename). */
export async function writeHeadFile(dir: string, instance: string, jws: string): Promise<void> {
  const path = join(dir, headFileName(instance));
  const tmp = `${path}${TEMP_SUFFIX}`;
  const handle = await open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(`${JSON.stringify({ format: HEAD_FORMAT, jws })}\n`);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}
