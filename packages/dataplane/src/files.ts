import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { assertAbsolutePath } from './names.js';

/**
 * Writes a file so readers see the old or the new content, never a mix: temp file, fsync,
 * rename. `durable: false` skips the fsync, for files regenerated from the datastore anyway.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Buffer,
  mode = 0o644,
  opts: { durable?: boolean } = {},
): Promise<void> {
  assertAbsolutePath(path);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    if (opts.durable ?? true) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/**
 * The same without fsync, synchronously: for small files regenerated from the datastore on
 * every start, where the thread-pool round trips of the async API cost more than the write.
 */
export function writeFileAtomicSync(path: string, data: string | Buffer, mode = 0o644): void {
  assertAbsolutePath(path);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(tmp, data, { mode });
  try {
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
}
