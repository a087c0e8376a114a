import { parentPort, workerData } from 'node:worker_threads';
import type { DsmParams } from './app.ts';
import { loadApp } from './apps/index.ts';

// Runs an app's plain sequential program in a fresh thread, like a DSM node's app worker, so the two
// are timed under the same conditions (cold JIT, no event loop work in the same thread).
const { app: ref, params } = workerData as { app: string; params: DsmParams };
const app = await loadApp(ref);
const started = performance.now();
const result = app.sequential(params);
parentPort?.postMessage({ result, ms: performance.now() - started });
