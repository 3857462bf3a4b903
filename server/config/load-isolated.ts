/**
 * Loads the configuration in a worker thread. Parsing YAML and validating it allocate far more
 * than the result: a directory with 10,000 devices and 10,000 assets grows the heap to ~270 MB
 * for a 15 MB result, and V8 keeps those pages, so the long-running process would carry ~320 MB
 * of resident memory before its first connection. In a worker, that garbage goes with the
 * thread; only the result is copied back (it is plain data, so the copy is exact).
 */
import { Worker } from 'node:worker_threads';
import type { LoadResult } from './load.js';

export function loadConfigIsolated(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadResult> {
  return new Promise<LoadResult>((resolve, reject) => {
    const worker = new Worker(new URL('./load-worker.js', import.meta.url), { workerData: { dir }, env });
    let settled = false;
    worker.once('message', (result: LoadResult) => {
      settled = true;
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`configuration loader exited with code ${code} before answering`));
    });
  });
}
