import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { connect, type ServerSession } from '../../src/session/index.ts';
import type { LazarusError } from '../../src/wire/errors.ts';
import { startPool, type TestPool } from '../helpers/pool.ts';
import { within } from '../helpers/streams.ts';

/**
 * A handler that is not a function of its checkpointed state and its input is caught when a new
 * owner replays the logged input: both the client and the new owner fail with ERR_LZ_DIVERGENCE,
 * and the client never receives a byte the old owner did not send.
 */

/**
 * The new owner detects the divergence (its session emits 'error' ERR_LZ_DIVERGENCE, the server
 * 'sessionError') but the session is not destroyed: a failed write only emits 'error' on a stream
 * made with autoDestroy: false, so no ABORT reaches the client, which stays open on a zombie session.
 */

const pools: TestPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

/** Output per chunk: from `reply`, which may consult anything outside the state. */
function handler(reply: (chunk: Buffer) => string, sent: Map<string, string>) {
  return (session: ServerSession) => {
    session.on('error', () => {});
    // Checkpointed once, when the session starts: everything after is replayed on the next owner.
    if (session.restoredState === undefined) session.checkpoint({ started: true });
    session.on('data', (d: Buffer) => {
      const out = reply(d);
      if (!session.replaying) sent.set(session.sessionId, (sent.get(session.sessionId) ?? '') + out);
      session.write(out);
    });
    session.on('end', () => session.end());
  };
}

async function expectDivergence(name: string, reply: (chunk: Buffer) => string): Promise<void> {
  const sent = new Map<string, string>();
  const pool = await startPool(3, handler(reply, sent));
  pools.push(pool);
  const serverErrors: { server: string; code: string }[] = [];
  for (const s of pool.servers) {
    s.on('sessionError', (err: LazarusError) => serverErrors.push({ server: s.serverId, code: err.code }));
  }
  const client = connect({ port: pool.member('a').port, resumeTimeout: 3000 });
  let got = '';
  client.on('data', (d: Buffer) => {
    got += d.toString();
  });
  const failed = new Promise<LazarusError>((resolve) => client.once('error', resolve));
  try {
    await within(5000, 'open', once(client, 'connect'));
    for (let i = 0; i < 5; i++) {
      client.write(`req${i};`);
      await within(
        2000,
        `reply ${i}`,
        // Each reply echoes its request, so this waits for this request's reply, not the last one.
        waitFor(() => got.includes(`req${i}`) && got === sent.get(client.sessionId!)),
      );
    }
    const before = got;
    // The move may resolve (RESUMED comes before the replay) or fail; the session must fail either way.
    const moved = client.migrate('b').then(
      () => 'resumed',
      (err: LazarusError) => err.code,
    );
    const err = await within(3000, `${name}: client error`, failed);
    await moved;
    assert.equal(
      err.code,
      'ERR_LZ_DIVERGENCE',
      `${name}: the client fails with the divergence (${err.message})`,
    );
    await within(
      2000,
      'server error',
      waitFor(() => serverErrors.length > 0),
    );
    assert.deepEqual(
      serverErrors.filter((e) => e.server === 'b').map((e) => e.code),
      ['ERR_LZ_DIVERGENCE'],
      `${name}: the new owner fails with the divergence too`,
    );
    assert.equal(got, before, `${name}: not one byte of the diverged replay reached the client`);
    // The old owner lets go once the new one has acknowledged the hand-over, which may come after
    // the client heard of the divergence.
    const hex = client.sessionId!;
    await within(
      2000,
      `${name}: the session to be gone everywhere`,
      waitFor(() => pool.owners(hex).length === 0),
    );
  } finally {
    client.destroy();
  }
}

test('a counter outside the state is detected as a divergence on migration', async () => {
  let calls = 0;
  await expectDivergence('counter', (d) => `#${++calls}:${d.toString()}`);
});

test('Math.random in the output is detected as a divergence on migration', async () => {
  await expectDivergence('random', (d) => `${d.toString()}=${Math.random().toString(36).slice(2, 10)};`);
});

test('a clock-dependent reply is detected too, even when its first bytes match', async () => {
  // Same prefix on both servers ("t="), different digits after: the comparison must go past the prefix.
  let tick = 1000;
  await expectDivergence('clock', (d) => {
    tick += 7;
    return `t=${tick} ${d.toString()}`;
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
