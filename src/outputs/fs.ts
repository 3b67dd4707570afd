import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-write';

/** Writes `<dir>/<name>` atomically (see src/core/atomic-write.ts): a reader never sees half an output. */
export async function writeOutputFile(dir: string, name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFileAtomic(file, text);
  return file;
}
