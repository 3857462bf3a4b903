/** Worker entry of load-isolated.ts: loads the configuration directory and posts the result. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from './load.js';

const { dir } = workerData as { dir: string };
parentPort!.postMessage(loadConfig(dir));
