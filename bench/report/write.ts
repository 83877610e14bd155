import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Results } from '../results.js';
import { renderReport } from './html.js';

/** Writes report.html beside results.json and returns its path. */
export async function writeReport(directory: string, results: Results): Promise<string> {
  const file = path.join(directory, 'report.html');
  await writeFile(file, renderReport(results));
  return file;
}
