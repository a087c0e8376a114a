import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { FaultProxy } from '../../src/faults/fault-proxy.ts';
import { SeededRandom } from '../../src/faults/random.ts';
import type { Member } from '../../src/pool/index.ts';
import { type ClientSession, connect, type MigratedEvent } from '../../src/session/index.ts';
import { expectedTransform, transformHandler } from '../fixtures/transform-handler.ts';
import { freePorts, startPool, type TestPool } from '../helpers/pool.ts';
import { pattern, readAll, within } from '../helpers/streams.ts';

/**
 * Byte-exact streams through hundreds of migrations among three servers, A -> B -> C -> A..., at
 * random points: while writes are in flight (frames cut by the connection switch), right after the
 * handler checkpointed, while the new owner is still replaying the logged input. The handler is
 * deterministic (see transform-handler.ts); the client knows what it must receive and checks its
 * sha-256. The servers' own errors must stay empty: a divergence here would be a transport bug.
 */

const pools: TestPool[] = [];
const proxies: FaultProxy[] = [];
after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(pools.map((p) => p.close()));
});

interface Stats {
  migrations: number;
  afterCheckpoint: number;
  duringReplay: number;
  inFlight: number;
}

const NEXT: Record<string, string> = { a: 'b', b: 'c', c: 'a' };

/**
 * One client: writes its pattern while moving its session around. Returns when the whole stream
 * came back and was checked.
 */
async function runClient(
  pool: TestPool,
  port: number,
  seed: number,
  total: number,
  migrations: number,
  stats: Stats,
  connectOptions: { reconnectDelay?: number; failoverAfter?: number } = {},
): Promise<void> {
  const random = new SeededRandom(seed ^ 0x5eed);
  const maxWrite = 1500;
  const client: ClientSession = connect({ port, resumeTimeout: 10_000, ...connectOptions });
  const failed = new Promise<never>((_, reject) => client.once('error', reject));
  failed.catch(() => {});
  await within(5000, 'session open', Promise.race([once(client, 'connect'), failed]));
  const hex = client.sessionId!;
  let done = 0;
  client.on('migrated', (_e: MigratedEvent) => {
    done++;
    stats.migrations++;
  });
  const received = readAll(client);

  /** Starts a migration to the next member in the cycle; awaited or not, as the caller likes. */
  const move = (): Promise<void> =>
    client.migrate(NEXT[client.serverId ?? 'a']).catch((err: { code?: string; message: string }) => {
      // A migration superseded by the next one is expected when they are fired off back to back.
      if (!/superseded/.test(err.message)) throw err;
    });

  const writer = (async () => {
    for (const chunk of pattern(seed, total, maxWrite)) {
      if (!client.write(chunk)) await once(client, 'drain');
      if (done >= migrations || random.next() > 0.55) continue;
      const mode = random.int(0, 3);
      if (mode === 0) {
        // Awaited: the next write goes to the new owner.
        await move();
      } else if (mode === 1) {
        // Fired while the writes that follow are in flight.
        stats.inFlight++;
        void move();
      } else if (mode === 2) {
        // Right after the owner's next checkpoint (synchronously, from the checkpoint itself).
        const owner = pool.servers.find((s) => s.sessions.has(hex))?.sessions.get(hex);
        if (!owner) continue;
        await within(
          5000,
          'a checkpoint',
          new Promise<void>((resolve) => {
            let fired = false;
            const fire = () => {
              if (fired) return;
              fired = true;
              stats.afterCheckpoint++;
              void move().then(resolve, resolve);
            };
            owner.once('checkpoint', fire);
            owner.once('close', fire);
            // The handler checkpoints only on input: keep writing until it does.
            setTimeout(fire, 200);
          }),
        );
      } else {
        // Twice in a row: the second lands while the first new owner may still be replaying.
        await move();
        await move();
      }
    }
    client.end();
  })();
  let got: { bytes: number; hash: string };
  try {
    [got] = await within(
      60_000,
      `stream of session ${hex.slice(0, 8)}`,
      Promise.race([Promise.all([received, writer]), failed]),
    );
  } finally {
    // A failed run must not leave a client reconnecting for its resume timeout.
    if (!client.writableFinished || !client.readableEnded) client.destroy();
  }
  const want = expectedTransform(seed, total, maxWrite);
  assert.equal(got.bytes, want.bytes, `session ${hex.slice(0, 8)}: byte count after ${done} migrations`);
  assert.equal(got.hash, want.hash, `session ${hex.slice(0, 8)}: sha-256 after ${done} migrations`);
  // Both ends finished: the session closes on the client and leaves every server.
  await until(
    5000,
    () => `session ${hex.slice(0, 8)} closed (client ${client.status}, owners [${pool.owners(hex)}])`,
    () => client.destroyed && pool.owners(hex).length === 0,
  );
}

function watchServers(pool: TestPool): Error[] {
  const errors: Error[] = [];
  for (const server of pool.servers) {
    server.on('sessionError', (err: Error) => errors.push(err));
    server.on('peerError', (err: Error) => errors.push(err));
  }
  return errors;
}

test('500+ migrations among three servers: byte-exact both ways, no loss, no duplicates', {}, async () => {
  const stats: Stats = { migrations: 0, afterCheckpoint: 0, duringReplay: 0, inFlight: 0 };
  const pool = await startPool(
    3,
    transformHandler({
      slice: 700,
      onSession: (session) =>
        session.on('migrated', () => {
          if (session.replaying) stats.duringReplay++;
        }),
    }),
    // The trailer is written after the client's FIN, once the last chunk is processed.
    { server: { allowHalfOpen: true } },
  );
  pools.push(pool);
  const errors = watchServers(pool);
  const clients = 5;
  await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      runClient(pool, pool.member('a').port, 1000 + i, 200_000, 120, stats),
    ),
  );
  assert.deepEqual(
    errors.map((e) => e.message),
    [],
    'no session or peer error on any server',
  );
  assert.ok(stats.migrations >= 500, `at least 500 migrations, got ${stats.migrations}`);
  assert.ok(stats.afterCheckpoint > 20, `migrations right after a checkpoint: ${stats.afterCheckpoint}`);
  assert.ok(stats.duringReplay > 0, `migrations during replay: ${stats.duringReplay}`);
  // Every session ended: no server holds one any more.
  await until(
    5000,
    () => `servers empty (${pool.servers.map((s) => s.sessions.size)})`,
    () => pool.servers.every((s) => s.sessions.size === 0),
  );
});

test('migrations combined with connections cut mid-frame by a fault proxy', {}, async () => {
  const stats: Stats = { migrations: 0, afterCheckpoint: 0, duringReplay: 0, inFlight: 0 };
  // Clients reach each member through a proxy that cuts connections after a random number of bytes
  // (frames arrive truncated); the members advertise the proxies' ports, so migrations go through
  // them too. The server-to-server channel is direct.
  const ports = await freePorts(6);
  const proxyList: FaultProxy[] = [];
  const members: Member[] = [];
  const listenPorts: Record<string, number> = {};
  for (const [i, id] of ['a', 'b', 'c'].entries()) {
    const proxy = new FaultProxy({
      targetPort: ports[i]!,
      seed: 77 + i,
      breakAfterBytes: [3000, 80_000],
      breakModes: ['reset', 'close'],
    });
    await proxy.listen();
    proxyList.push(proxy);
    proxies.push(proxy);
    members.push({ id, host: '127.0.0.1', port: proxy.port, peerPort: ports[3 + i]! });
    listenPorts[id] = ports[i]!;
  }
  const pool = await startPool(3, transformHandler({ slice: 900 }), {
    members,
    listenPorts,
    server: { allowHalfOpen: true },
  });
  pools.push(pool);
  const errors = watchServers(pool);
  await Promise.all(
    Array.from({ length: 3 }, (_, i) =>
      runClient(pool, pool.member('a').port, 2000 + i, 150_000, 40, stats, {
        reconnectDelay: 2,
        failoverAfter: 4,
      }),
    ),
  );
  const breaks = proxyList.reduce((n, p) => n + p.stats.breaks, 0);
  assert.deepEqual(
    errors.map((e) => e.message),
    [],
    'no session or peer error on any server',
  );
  assert.ok(breaks >= 10, `the proxies cut connections (${breaks} breaks)`);
  assert.ok(stats.migrations >= 100, `migrations happened (${stats.migrations})`);
});

test('two hops without a checkpoint in between (reproduction of the restore bug)', {}, async () => {
  // An echo handler that never checkpoints: the whole output since 0 is the log. After the client
  // acknowledged some output, A -> B restores it, and B -> C must hand over the same log again.
  const pool = await startPool(3, (session) => {
    session.on('error', () => {});
    session.on('data', (d: Buffer) => session.write(d));
    session.on('end', () => session.end());
  });
  pools.push(pool);
  const client = connect({ port: pool.member('a').port, resumeTimeout: 1500 });
  client.on('error', () => {});
  try {
    await within(5000, 'open', once(client, 'connect'));
    const chunks: Buffer[] = [];
    client.on('data', (d: Buffer) => chunks.push(d));
    client.write('hello');
    await until(
      2000,
      () => 'echo',
      () => Buffer.concat(chunks).length === 5,
    );
    // Let the client's ack reach A, so the continuation's acked offset passes the checkpoint (0).
    await new Promise((r) => setTimeout(r, 50));
    await within(5000, 'a -> b', client.migrate('b'));
    await within(5000, 'b -> c', client.migrate('c'));
    client.write(' world');
    await until(
      2000,
      () => 'echo on c',
      () => Buffer.concat(chunks).length === 11,
    );
    assert.equal(Buffer.concat(chunks).toString(), 'hello world', 'echo across two hops');
  } finally {
    client.destroy();
  }
});

/** Polls `cond`; fails after `ms` describing the state then (so the message says what was left). */
async function until(ms: number, what: () => string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
