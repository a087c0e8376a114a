import { workerData } from 'node:worker_threads';
import { isLazarusError } from '../wire/errors.ts';
import { loadApp } from './apps/index.ts';
import { SyncCaller, type WorkerInit } from './bridge.ts';
import { DsmContext } from './context.ts';
import { CheckpointClock } from './ft/policy.ts';
import { PageTable } from './pages.ts';

// The app thread of a DSM node: loads the app, waits for the cluster to start, runs it.
const init = workerData as WorkerInit;
const caller = new SyncCaller(init.port, init.ctl);
try {
  const app = await loadApp(init.app);
  const pages = new PageTable(init, init.me, init.buffers);
  const clock = init.clock && new CheckpointClock(init.me, init.clock.policy, init.clock.forced);
  const ft = {
    on: init.ft,
    ...(init.restored ? { restored: init.restored } : {}),
    ...(clock ? { clock } : {}),
  };
  const ctx = new DsmContext(pages, init.regions, init.nodes, caller, ft);
  caller.call({ op: 'ready' });
  // A node restarted from a checkpoint is past the start barrier already.
  if (!init.restored) ctx.barrier();
  const started = performance.now();
  app.run(ctx, init.params);
  ctx.barrier();
  const ms = performance.now() - started;
  const result = init.me === 0 ? app.result(ctx, init.params) : undefined;
  caller.call({ op: 'done', result, ms });
} catch (err) {
  const code = isLazarusError(err) ? err.code : 'ERR_LZ_DSM_APP_FAILED';
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  // Waits for the main thread to take the failure, so it is reported before this thread exits.
  caller.call({ op: 'failed', code, message });
}
init.port.close();
