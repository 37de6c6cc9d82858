import { open, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { assertAbsolutePath } from './names.js';

/** Writes a file so readers see the old or the new content, never a mix: temp file, fsync, rename. */
export async function writeFileAtomic(
  path: string,
  data: string | Buffer,
  mode = 0o644,
): Promise<void> {
  assertAbsolutePath(path);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
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
