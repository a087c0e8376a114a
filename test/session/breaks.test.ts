import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FaultProxy } from '../../src/faults/fault-proxy.ts';
import { SeededRandom } from '../../src/faults/random.ts';
import { connect, createServer } from '../../src/session/index.ts';
import { patternHash, readAll, within, writePattern } from '../helpers/streams.ts';

const SESSIONS = 8;
const BYTES = 6 * 1024 * 1024;
const MAX_WRITE = 48 * 1024;

test('byte-exact streams both ways across 1,000+ forced connection breaks', async () => {
  const serverReceived = new Map<number, Promise<{ bytes: number; hash: string }>>();
  let nextIndex = 0;
  const server = createServer(
    { keepaliveInterval: 100, keepaliveTimeout: 400, resumeTimeout: 20_000 },
    (session) => {
      // Sessions are told apart by the order their first byte arrives; each side's seed is its index.
      const index = nextIndex++;
      serverReceived.set(index, readAll(session));
      void writePattern(session, 1000 + index, BYTES, MAX_WRITE);
    },
  );
  const { port } = await server.listen();
  const proxy = new FaultProxy({
    targetPort: port,
    seed: 7,
    breakAfterBytes: [300, 60_000],
    breakModes: ['reset', 'close'],
  });
  const random = new SeededRandom(11);
  // Vary where breaks land: sometimes inside the handshake or the resume itself, sometimes a stall.
  proxy.on('break', () => {
    const r = random.next();
    proxy.configure({
      breakAfterBytes: r < 0.2 ? [1, 300] : [300, 60_000],
      breakModes: r > 0.97 ? ['stall'] : ['reset', 'close'],
    });
  });
  await proxy.listen();

  let reconnects = 0;
  const clients = [];
  // The server numbers sessions as they open, so open them one at a time for the numbers to match.
  for (let i = 0; i < SESSIONS; i++) {
    const client = connect({
      port: proxy.port,
      reconnectDelay: 1,
      reconnectDelayMax: 20,
      keepaliveInterval: 100,
      keepaliveTimeout: 400,
      resumeTimeout: 20_000,
    });
    client.on('reconnecting', () => reconnects++);
    await within(10_000, 'session open', new Promise((resolve) => client.once('connect', resolve)));
    // The server hands a session over once the client confirmed it; wait for that too.
    while (nextIndex <= i) await new Promise((resolve) => setTimeout(resolve, 1));
    clients.push(client);
  }
  const results = await within(
    120_000,
    'all sessions to finish',
    Promise.all(
      clients.map(async (client, index) => {
        const received = readAll(client);
        await writePattern(client, index, BYTES, MAX_WRITE);
        const got = await received;
        await new Promise((resolve) =>
          client.destroyed ? resolve(undefined) : client.once('close', resolve),
        );
        return got;
      }),
    ),
  );
  assert.ok(proxy.stats.breaks >= 1000, `only ${proxy.stats.breaks} breaks were forced`);
  assert.ok(reconnects >= 1000, `only ${reconnects} reconnects`);
  for (const [index, got] of results.entries()) {
    assert.equal(got.bytes, BYTES, `client ${index} received ${got.bytes} bytes`);
    assert.equal(got.hash, patternHash(1000 + index, BYTES, MAX_WRITE), `client ${index} stream differs`);
  }
  const serverSide = await Promise.all([...serverReceived.values()]);
  assert.equal(serverSide.length, SESSIONS);
  const expected = new Set(Array.from({ length: SESSIONS }, (_, i) => patternHash(i, BYTES, MAX_WRITE)));
  for (const got of serverSide) {
    assert.equal(got.bytes, BYTES);
    assert.ok(expected.has(got.hash), 'a server-side stream differs from every client stream');
  }
  await proxy.close();
  await server.close();
});
