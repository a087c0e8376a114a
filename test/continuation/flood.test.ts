import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { type CheckpointEvent, connect, type ServerSession } from '../../src/session/index.ts';
import { expectedTransform, Transformer, type TransformState } from '../fixtures/transform-handler.ts';
import { startPool, type TestPool } from '../helpers/pool.ts';
import { pattern, patternHash, readAll, within } from '../helpers/streams.ts';

/**
 * A client that floods a session whose handler does not checkpoint: the input log and the retained
 * output must stay within the log budget (plus what one socket read can carry), the client must be
 * held back (its writes stop completing), and once the handler checkpoints again everything flows
 * on with nothing lost. Memory is judged on the session's own counters, never on RSS or timing.
 */

const pools: TestPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

const BUDGET = 64 * 1024;
/** What may pass the budget: frames already read when input is held (a socket read is <= 64 KiB). */
const SLACK = 256 * 1024;

test('flooding client, handler not checkpointing: log bounded, client paused, nothing lost after', async () => {
  let allow = false;
  let session: ServerSession | undefined;
  let lastCheckpoint: CheckpointEvent = { inputOffset: 0, outputOffset: 0, snapshotBytes: 0 };
  const hash = createHash('sha256');
  let consumed = 0;
  let needed = 0;
  const pool = await startPool(
    1,
    (s) => {
      session = s;
      s.on('error', () => {});
      s.on('checkpoint', (e: CheckpointEvent) => {
        lastCheckpoint = e;
      });
      s.on('checkpointNeeded', () => {
        needed++;
      });
      s.on('data', (d: Buffer) => {
        hash.update(d);
        consumed += d.length;
        if (allow) s.checkpoint({ consumed });
      });
      s.on('end', () => s.end(hash.digest('hex')));
    },
    { server: { logBudget: BUDGET, allowHalfOpen: true } },
  );
  pools.push(pool);
  const total = 6 * 1024 * 1024;
  const client = connect({ port: pool.member('a').port, maxUnacked: 256 * 1024 });
  client.on('error', () => {});
  try {
    await within(5000, 'open', once(client, 'connect'));
    let completed = 0;
    let written = 0;
    const chunks = [...pattern(5, total, 16 * 1024)];
    // Writes without waiting for 'drain': the flood. Each completion is counted.
    const writer = (async () => {
      for (const chunk of chunks) {
        written += chunk.length;
        client.write(chunk, () => {
          completed += chunk.length;
        });
        if (client.writableLength > 2 * 1024 * 1024) await once(client, 'drain');
      }
      client.end();
    })();
    let replyText = '';
    client.on('data', (d: Buffer) => {
      replyText += d.toString();
    });
    const reply = once(client, 'end');
    // Flood for a while, sampling the session's structures.
    let maxLog = 0;
    let maxHeld = 0;
    const started = Date.now();
    while (Date.now() - started < 600) {
      await new Promise((r) => setTimeout(r, 10));
      if (!session) continue;
      maxLog = Math.max(maxLog, session.receivedOffset - lastCheckpoint.inputOffset);
      maxHeld = Math.max(maxHeld, session.readableLength);
    }
    assert.ok(session, 'the handler has the session');
    assert.ok(needed >= 1, 'the handler was asked to checkpoint');
    assert.ok(maxLog <= BUDGET + SLACK, `input log stayed bounded: ${maxLog} bytes (budget ${BUDGET})`);
    assert.ok(maxHeld <= SLACK, `no input piles up in the session: ${maxHeld} bytes`);
    assert.ok(client.writableNeedDrain, 'the client is told to wait (write() returns false)');
    // The client is paused: its completed writes do not advance any more.
    const before = completed;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(completed, before, 'client writes stopped completing while the log is over budget');
    assert.ok(completed < total, `the flood is held back (${completed} of ${total} completed)`);
    assert.ok(written > completed, 'the client has writes waiting');
    // The handler checkpoints again: everything flows, nothing lost.
    allow = true;
    session.checkpoint({ consumed });
    await within(20_000, 'flood written', writer);
    await within(20_000, 'reply', reply);
    assert.equal(consumed, total, 'the server consumed every byte');
    // The server's reply is the sha-256 of what it consumed.
    assert.equal(replyText, patternHash(5, total, 16 * 1024), 'the server consumed the flood byte-exact');
  } finally {
    client.destroy();
  }
});

test('echo flood without checkpoints: retained output is bounded too, nothing lost after', async () => {
  // An echo: every input byte becomes output the session must keep (it follows the checkpoint).
  let allow = false;
  let session: ServerSession | undefined;
  let last: CheckpointEvent = { inputOffset: 0, outputOffset: 0, snapshotBytes: 0 };
  const pool = await startPool(
    1,
    (s) => {
      session = s;
      s.on('error', () => {});
      s.on('checkpoint', (e: CheckpointEvent) => {
        last = e;
      });
      s.on('data', (d: Buffer) => {
        s.write(d);
        if (allow) s.checkpoint(null);
      });
      s.on('end', () => s.end());
    },
    { server: { logBudget: BUDGET, maxUnacked: 512 * 1024 } },
  );
  pools.push(pool);
  const total = 4 * 1024 * 1024;
  const client = connect({ port: pool.member('a').port, maxUnacked: 256 * 1024 });
  client.on('error', () => {});
  try {
    await within(5000, 'open', once(client, 'connect'));
    const writer = (async () => {
      for (const chunk of pattern(9, total, 8 * 1024)) {
        if (!client.write(chunk)) await once(client, 'drain');
      }
      client.end();
    })();
    const reply = readAll(client);
    let maxLog = 0;
    let maxOut = 0;
    const started = Date.now();
    while (Date.now() - started < 500) {
      await new Promise((r) => setTimeout(r, 10));
      if (!session) continue;
      maxLog = Math.max(maxLog, session.receivedOffset - last.inputOffset);
      maxOut = Math.max(maxOut, session.sentOffset - last.outputOffset);
    }
    assert.ok(session, 'the handler has the session');
    assert.ok(maxLog <= BUDGET + SLACK, `input log bounded: ${maxLog}`);
    assert.ok(maxOut <= BUDGET + SLACK, `retained output bounded: ${maxOut}`);
    allow = true;
    session.checkpoint(null);
    await within(20_000, 'written', writer);
    const got = await within(20_000, 'echo', reply);
    assert.equal(got.bytes, total, 'every byte echoed');
    assert.equal(got.hash, patternHash(9, total, 8 * 1024), 'echo byte-exact');
  } finally {
    client.destroy();
  }
});

test('checkpointing from the checkpointNeeded listener, then migrating: nothing lost', {}, async () => {
  // The natural use of 'checkpointNeeded': checkpoint right there. One hop per session (a second hop
  // would meet the restore bug reported in migration.test.ts).
  const pool = await startPool(
    3,
    (s) => {
      const t = new Transformer(s.restoredState as TransformState | undefined);
      s.on('error', () => {});
      s.on('checkpointNeeded', () => s.checkpoint(t.state));
      s.on('data', (d: Buffer) => s.write(t.feed(d)));
      s.on('end', () => s.end(t.trailer()));
    },
    { server: { logBudget: 16 * 1024 } },
  );
  pools.push(pool);
  const errors: string[] = [];
  for (const srv of pool.servers)
    srv.on('sessionError', (e: Error) => errors.push(`${srv.serverId}: ${e.message}`));
  for (let seed = 1; seed <= 4; seed++) {
    const total = 200_000;
    const client = connect({ port: pool.member('a').port });
    client.on('error', () => {});
    try {
      await within(5000, 'open', once(client, 'connect'));
      const reply = readAll(client);
      let i = 0;
      for (const chunk of pattern(seed, total, 3000)) {
        if (!client.write(chunk)) await once(client, 'drain');
        if (++i === 40) await within(5000, 'move', client.migrate('b'));
      }
      client.end();
      const got = await within(5000, 'reply', reply).catch((err: Error) => {
        throw new Error(`${err.message}; server errors: ${errors.join('; ')}`);
      });
      const want = expectedTransform(seed, total, 3000);
      assert.equal(got.hash, want.hash, `seed ${seed}: byte-exact across the move`);
    } finally {
      client.destroy();
    }
  }
});

test('a handler that pauses its session while working: the session still completes', {}, async () => {
  const pool = await startPool(
    1,
    (s) => {
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        // Works asynchronously on each chunk, pausing input meanwhile (ordinary backpressure).
        s.pause();
        setTimeout(() => {
          s.write(d);
          s.resume();
        }, 1);
      });
      s.on('end', () => setTimeout(() => s.end(), 5));
    },
    { server: { allowHalfOpen: true } },
  );
  pools.push(pool);
  const client = connect({ port: pool.member('a').port });
  client.on('error', () => {});
  try {
    await within(5000, 'open', once(client, 'connect'));
    const reply = readAll(client);
    for (const chunk of pattern(3, 400_000, 20_000)) client.write(chunk);
    client.end();
    const got = await within(10_000, 'echo', reply);
    assert.equal(got.hash, patternHash(3, 400_000, 20_000), 'echo byte-exact');
    await within(3000, 'client close', client.destroyed ? Promise.resolve([]) : once(client, 'close'));
    assert.equal(pool.servers[0]!.sessions.size, 0, 'the server let the session go');
  } finally {
    client.destroy();
  }
});
