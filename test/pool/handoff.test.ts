import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from '../../src/pool/index.ts';
import { type ClientSession, connect, type ServerSession } from '../../src/session/index.ts';
import { startPool, type TestPool } from '../helpers/pool.ts';
import { within } from '../helpers/streams.ts';

/**
 * A client that moves its live session tells its owner where to (HANDOFF); the owner pushes the
 * session there at once instead of waiting to be pulled. Whatever the order in which the push and the
 * client arrive, the stream stays exact and the session has one owner; when the new owner surely did
 * not get the push, the session carries on at its owner.
 */

const pools: TestPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

/** Replies to every message with the running byte count (state checkpointed per message). */
function counter(session: ServerSession): void {
  const state = (session.restoredState as { n: number } | undefined) ?? { n: 0 };
  session.on('error', () => {});
  session.on('data', (d: Buffer) => {
    state.n += d.length;
    session.write(`${state.n};`);
    session.checkpoint(state);
  });
  session.on('end', () => session.end());
}

interface Counts {
  pulls: number;
  pushes: Array<'moved' | 'kept'>;
}

/** Counts each member's pulls and pushes; `delayPush` holds every push back that long first. */
function instrument(pool: Pool, counts: Counts, delayPush = 0): void {
  const pull = pool.pull.bind(pool);
  pool.pull = (...args: Parameters<Pool['pull']>) => {
    counts.pulls++;
    return pull(...args);
  };
  const push = pool.push.bind(pool);
  pool.push = async (...args: Parameters<Pool['push']>) => {
    if (delayPush) await sleep(delayPush);
    const outcome = await push(...args);
    counts.pushes.push(outcome);
    return outcome;
  };
}

/** Sends one message and waits for the count it must bring back. */
class Exchange {
  readonly client: ClientSession;
  #got = '';
  #sent = 0;
  #expected = '';
  constructor(client: ClientSession) {
    this.client = client;
    client.on('data', (d: Buffer) => {
      this.#got += d.toString();
    });
  }
  async step(message: string): Promise<void> {
    this.#sent += message.length;
    this.#expected += `${this.#sent};`;
    this.client.write(message);
    await within(
      3000,
      `echo of ${this.#sent}`,
      this.#until(() => this.#got === this.#expected),
    );
  }
  async #until(done: () => boolean): Promise<void> {
    while (!done()) {
      if (this.#got.length > this.#expected.length) throw new Error(`extra bytes: ${this.#got}`);
      await sleep(2);
    }
  }
}

test('planned moves are pushed: the stream stays exact, one owner each time', async () => {
  const pool = await startPool(3, counter);
  pools.push(pool);
  const counts: Counts = { pulls: 0, pushes: [] };
  for (const p of pool.pools) instrument(p, counts);
  const client = connect({ port: pool.member('a').port });
  client.on('error', () => {});
  await within(3000, 'open', once(client, 'connect'));
  const x = new Exchange(client);
  const ids = ['b', 'c', 'a'];
  const moves = 30;
  for (let i = 0; i < moves; i++) {
    await x.step(`m${i}`);
    const to = ids[i % 3]!;
    await within(3000, `move ${i} to ${to}`, client.migrate(to));
    assert.equal(client.serverId, to, `move ${i} landed on ${to}`);
  }
  await x.step('last');
  assert.equal(client.epoch, moves, 'one epoch per move');
  assert.deepEqual(
    counts.pushes,
    Array.from({ length: moves }, () => 'moved'),
    'every move was pushed and taken',
  );
  // A client may reach the new owner before the push does; it said it had asked for the push, so
  // the new owner waits for it instead of pulling.
  assert.equal(counts.pulls, 0, 'no pull: every new owner waited for the push');
  const hex = pool.server('a').sessions.keys().next().value as string;
  assert.deepEqual(pool.owners(hex), ['a'], 'one owner at the end');
  client.destroy();
});

test('a push later than the grace: the new owner pulls, then takes the push, not its pull', async () => {
  const pool = await startPool(2, counter);
  pools.push(pool);
  const counts: Counts = { pulls: 0, pushes: [] };
  // Longer than the 250 ms a member waits for an announced push before it pulls.
  for (const p of pool.pools) instrument(p, counts, 500);
  const client = connect({ port: pool.member('a').port });
  client.on('error', () => {});
  await within(3000, 'open', once(client, 'connect'));
  const x = new Exchange(client);
  await x.step('one');
  await within(3000, 'move to b', client.migrate('b'));
  await x.step('two');
  assert.equal(counts.pulls, 1, 'b pulled, as the push was late');
  assert.deepEqual(counts.pushes, ['moved'], 'the push landed and was taken');
  const hex = pool.server('b').sessions.keys().next().value as string;
  assert.deepEqual(pool.owners(hex), ['b'], 'b alone owns it');
  assert.equal(client.epoch, 1, 'one move, one epoch');
  client.destroy();
});

test('a push the new owner never got leaves the session at its owner, which serves it on', async () => {
  // Member c is listed but not running: the push cannot leave a, and the client cannot reach c.
  const pool = await startPool(3, counter, { only: ['a', 'b'] });
  pools.push(pool);
  const counts: Counts = { pulls: 0, pushes: [] };
  // Held back, so the client's return to a arrives while the push is still in flight.
  for (const p of pool.pools) instrument(p, counts, 100);
  const client = connect({
    port: pool.member('a').port,
    reconnectDelay: 5,
    reconnectDelayMax: 20,
    failoverAfter: 1,
  });
  client.on('error', () => {});
  await within(3000, 'open', once(client, 'connect'));
  const x = new Exchange(client);
  await x.step('one');
  await within(
    5000,
    'the move to c ends',
    client.migrate('c').catch(() => {}),
  );
  await within(5000, 'attached again', waitOpen(client));
  await x.step('two');
  assert.deepEqual(counts.pushes, ['kept'], 'the push never left a');
  const server = client.serverId;
  assert.ok(server === 'a' || server === 'b', `now on ${server}`);
  const hex = [...pool.server('a').sessions.keys(), ...pool.server('b').sessions.keys()][0]!;
  assert.deepEqual(pool.owners(hex), [server], 'one owner');
  client.destroy();
});

async function waitOpen(client: ClientSession): Promise<void> {
  while (client.status !== 'open') await sleep(5);
}
