import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { requestDrain, serverAdvice } from '../../src/pool/index.ts';
import { type ClientSession, connect } from '../../src/session/index.ts';
import { expectedTransform, transformHandler } from '../fixtures/transform-handler.ts';
import { startPool, TEST_SECRET, type TestPool } from '../helpers/pool.ts';
import { pattern, type Received, readAll, within } from '../helpers/streams.ts';

/**
 * Drain, as before a deploy: every session of one server moves to the two others while its client
 * keeps streaming, with zero loss; the drained server ends empty and its report counts right. Also
 * through the admin path (requestDrain over the peer channel).
 */

const pools: TestPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

const TOTAL = 3000;
const MAX_WRITE = 400;

interface Running {
  readonly client: ClientSession;
  readonly seed: number;
  readonly received: Promise<Received>;
  /** Writes the rest of the pattern, and ends once `gate` resolves (so no session ends mid-drain). */
  finish(gate?: Promise<unknown>): Promise<void>;
}

/**
 * Opens a session streaming its pattern; the first half is written at once, the rest by finish().
 * `heedsAdvice: false` makes a client without the serverAdvice policy.
 */
async function open(port: number, seed: number, heedsAdvice = true): Promise<Running> {
  const policies = heedsAdvice ? [serverAdvice()] : [];
  const client = connect({ port, policies, resumeTimeout: 20_000 });
  client.on('error', () => {});
  await within(10_000, 'session open', once(client, 'connect'));
  const received = readAll(client);
  received.catch(() => {});
  const chunks = [...pattern(seed, TOTAL, MAX_WRITE)];
  const half = Math.ceil(chunks.length / 2);
  for (const c of chunks.slice(0, half)) client.write(c);
  return {
    client,
    seed,
    received,
    async finish(gate) {
      for (const c of chunks.slice(half)) {
        if (!client.write(c)) await once(client, 'drain');
        await new Promise((r) => setImmediate(r));
      }
      await gate;
      client.end();
    },
  };
}

async function openMany(port: number, n: number, seedBase: number): Promise<Running[]> {
  const out: Running[] = [];
  // In batches, so the listen backlog is not flooded.
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, (_, j) => open(port, seedBase + i + j)),
    );
    out.push(...batch);
  }
  return out;
}

async function checkAll(sessions: readonly Running[]): Promise<void> {
  const results = await within(
    60_000,
    'every stream',
    Promise.all(sessions.map((s) => s.received.then((r) => ({ s, r })))),
  );
  let bad = 0;
  let first = '';
  for (const { s, r } of results) {
    const want = expectedTransform(s.seed, TOTAL, MAX_WRITE);
    if (r.hash !== want.hash || r.bytes !== want.bytes) {
      bad++;
      first ||= `seed ${s.seed}: ${r.bytes} bytes, want ${want.bytes}`;
    }
  }
  assert.equal(bad, 0, `every stream byte-exact (${bad} bad, first: ${first})`);
}

test('drain of 1,000 active sessions from one server to two others, zero loss', async () => {
  const pool = await startPool(3, transformHandler());
  pools.push(pool);
  const errors: string[] = [];
  for (const s of pool.servers)
    s.on('sessionError', (e: Error) => errors.push(`${s.serverId}: ${e.message}`));
  const a = pool.server('a');
  const adopted: Record<string, number> = { b: 0, c: 0 };
  for (const id of ['b', 'c']) pool.server(id).on('adopted', () => adopted[id]!++);
  const sessions = await openMany(pool.member('a').port, 1000, 10_000);
  assert.equal(a.sessions.size, 1000, 'all sessions on a before the drain');
  const drained = a.drain(30_000);
  // The clients keep streaming while they are moved.
  const writing = Promise.all(sessions.map((s) => s.finish(drained)));
  const report = await within(40_000, 'drain report', drained);
  assert.equal(a.sessions.size, 0, 'a holds no session after the drain');
  assert.equal(report.remaining, 0, 'report: none remaining');
  assert.equal(report.moved, 1000, 'report: 1000 moved');
  assert.ok(adopted.b! > 300 && adopted.c! > 300, `spread over both others (${JSON.stringify(adopted)})`);
  assert.equal(adopted.b! + adopted.c!, 1000, 'every session adopted exactly once');
  await within(30_000, 'writes', writing);
  await checkAll(sessions);
  assert.deepEqual(errors, [], 'no session errors');
  for (const s of sessions) s.client.destroy();
  a.undrain();
});

test('drain requested over the peer channel (requestDrain) reports and moves every session', async () => {
  const pool = await startPool(3, transformHandler());
  pools.push(pool);
  const sessions = await openMany(pool.member('b').port, 200, 50_000);
  assert.equal(pool.server('b').sessions.size, 200, 'all on b');
  const drained = requestDrain(pool.member('b'), TEST_SECRET, 20_000);
  const writing = Promise.all(sessions.map((s) => s.finish(drained)));
  const report = await within(30_000, 'requestDrain', drained);
  assert.deepEqual(
    { moved: report.moved, remaining: report.remaining },
    { moved: 200, remaining: 0 },
    `report counts every session moved (${JSON.stringify(report)})`,
  );
  assert.equal(pool.server('b').sessions.size, 0, 'b is empty');
  await within(30_000, 'writes', writing);
  await checkAll(sessions);
  for (const s of sessions) s.client.destroy();
});

test('requestDrain with a wrong secret is refused and moves nothing', async () => {
  const pool = await startPool(2, transformHandler());
  pools.push(pool);
  const sessions = await openMany(pool.member('a').port, 3, 90_000);
  await assert.rejects(
    requestDrain(pool.member('a'), 'not-the-pool-secret', 2000),
    (err: { code?: string }) =>
      err.code === 'ERR_LZ_PEER_AUTH_FAILED' || err.code === 'ERR_LZ_ORIGIN_UNREACHABLE',
    'the drain request is refused',
  );
  assert.equal(pool.server('a').sessions.size, 3, 'nothing moved');
  await Promise.all(sessions.map((s) => s.finish()));
  await checkAll(sessions);
  for (const s of sessions) s.client.destroy();
});

test('clients that ignore the advice move too: the draining server hands their sessions over', async () => {
  const pool = await startPool(3, transformHandler());
  pools.push(pool);
  const port = pool.member('a').port;
  // First in line: clients without the serverAdvice policy, handed over in the drain's first windows.
  const deaf: Running[] = [];
  for (let i = 0; i < 6; i++) deaf.push(await open(port, 75_000 + i, false));
  const sessions = await openMany(port, 40, 70_000);
  const a = pool.server('a');
  assert.equal(a.sessions.size, 46);
  const drained = a.drain(6000, 4);
  const writing = Promise.all([...deaf, ...sessions].map((s) => s.finish(drained)));
  const report = await within(15_000, 'drain report', drained);
  assert.deepEqual(
    { moved: report.moved, remaining: report.remaining },
    { moved: 46, remaining: 0 },
    `every session moved, heeded or not (${JSON.stringify(report)})`,
  );
  await within(30_000, 'writes', writing);
  await checkAll([...deaf, ...sessions]);
  assert.ok(
    deaf.every((s) => s.client.serverId === 'b' || s.client.serverId === 'c'),
    `the deaf clients resumed where their sessions went (${deaf.map((s) => s.client.serverId)})`,
  );
  for (const s of [...deaf, ...sessions]) s.client.destroy();
  a.undrain();
});

test('a member that is down during a drain: the sessions handed to it fail over, nothing lost', async () => {
  // c is in the pool but not running: every other hand-over (to c) fails, and its client, told to
  // go there, cannot; it fails over to b, which pulls the session from a.
  const pool = await startPool(3, transformHandler(), { only: ['a', 'b'] });
  pools.push(pool);
  const sessions = await openMany(pool.member('a').port, 60, 85_000);
  const a = pool.server('a');
  const drained = a.drain(20_000, 16);
  const writing = Promise.all(sessions.map((s) => s.finish(drained)));
  const report = await within(25_000, 'drain report', drained);
  assert.deepEqual(
    { moved: report.moved, remaining: report.remaining },
    { moved: 60, remaining: 0 },
    `every session left a (${JSON.stringify(report)})`,
  );
  await within(30_000, 'writes', writing);
  await checkAll(sessions);
  assert.ok(
    sessions.every((s) => s.client.serverId === 'b'),
    `all on b (${sessions.map((s) => s.client.serverId)})`,
  );
  for (const s of sessions) s.client.destroy();
});
