import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';

/**
 * The worker side of the DSM bridge (SyncCaller) blocks on a shared word until the main thread has
 * posted its answer. The main thread stores the word and then notifies; if it pauses in between, the
 * worker can see the store, take the answer and be waiting for its next one when that late notify
 * arrives. Here the late notify is made on purpose, between two calls.
 */

const TSX = import.meta.resolve('tsx/esm/api');
const BRIDGE = new URL('../../src/dsm/bridge.ts', import.meta.url).href;

/** A worker that makes two calls through a SyncCaller and reports how each ended. */
const WORKER = `(async () => {
  const { workerData, parentPort } = await import('node:worker_threads');
  (await import(${JSON.stringify(TSX)})).register();
  const { SyncCaller } = await import(${JSON.stringify(BRIDGE)});
  const caller = new SyncCaller(workerData.port, workerData.ctl);
  const outcomes = [];
  for (const page of [1, 2]) {
    try {
      caller.call({ op: 'fetch', pages: [page] });
      outcomes.push('answered');
    } catch (err) {
      outcomes.push(err.code + ': ' + err.message);
    }
  }
  parentPort.postMessage(outcomes);
})();`;

/** Answers the way WorkerHost does: the answer first, then the word, then the wake-up. */
function answer(port: MessagePort, word: Int32Array): void {
  port.postMessage({ ok: true });
  Atomics.store(word, 0, 1);
  Atomics.notify(word, 0);
}

test('SyncCaller: a late wake-up from the previous answer does not end the next call', async () => {
  const { port1, port2 } = new MessageChannel();
  const ctl = new SharedArrayBuffer(4);
  const word = new Int32Array(ctl);
  const worker = new Worker(WORKER, { eval: true, workerData: { port: port2, ctl }, transferList: [port2] });
  try {
    const outcomes = once(worker, 'message');
    const [first] = (await once(port1, 'message')) as [{ pages: number[] }];
    assert.deepEqual(first.pages, [1]);
    const second = once(port1, 'message');
    answer(port1, word);
    const [next] = (await second) as [{ pages: number[] }];
    assert.deepEqual(next.pages, [2]);
    // The worker now waits for its second answer (word 0). Wake it without one, as the first
    // answer's late notify would: retried until a waiter was there to be woken.
    while (Atomics.notify(word, 0) === 0) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 50));
    answer(port1, word);
    const [result] = (await outcomes) as [string[]];
    assert.deepEqual(result, ['answered', 'answered']);
  } finally {
    port1.close();
    await worker.terminate();
  }
});
