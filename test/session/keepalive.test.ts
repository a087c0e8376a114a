import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rttDegraded } from '../../src/pool/policies.ts';
import { connect, createServer } from '../../src/session/index.ts';
import { encode } from '../../src/session/protocol.ts';
import { openRaw } from '../helpers/raw-session.ts';

test('a server does not ping a client that pings it; it probes one that goes quiet', async () => {
  const server = createServer({
    secret: 'keepalive test secret',
    keepaliveInterval: 100,
    keepaliveTimeout: 1000,
  });
  server.on('session', (s) => s.on('error', () => {}));
  const { port } = await server.listen(0);
  try {
    const s = await openRaw(port);
    const pings = () => s.conn.pings;
    const pongs = () => s.conn.pongs;
    // A live client: pings every 100 ms for 1.2 s, longer than the server's whole timeout.
    for (let i = 0; i < 12; i++) {
      s.conn.send(encode.ping(i));
      await sleep(100);
    }
    assert.equal(pings(), 0, 'no ping towards a client heard from all along');
    assert.ok(pongs() >= 10, `the client's pings were answered (${pongs()} pongs)`);
    // Quiet now (pings still answered, as a client's socket does): the server probes after half
    // its timeout. Then the raw socket stops answering and the server gives up.
    const deadline = Date.now() + 3000;
    while (pings() === 0 && Date.now() < deadline) await sleep(20);
    assert.ok(pings() >= 1, 'a quiet client was probed');
  } finally {
    await server.close(0);
  }
});

test('a client pings a server that keeps talking only when a policy reads the RTT', async () => {
  // A server writing every 20 ms is never quiet for 500 ms, even on a loaded machine; the sampling
  // policy asks for a ping every 100 ms all the same.
  const FAST = { keepaliveInterval: 500, keepaliveTimeout: 3000 };
  let talking = true;
  const server = createServer({ secret: 'keepalive test secret', ...FAST }, (s) => {
    s.on('error', () => {});
    const timer = setInterval(() => {
      if (talking) s.write('x');
    }, 20);
    s.on('close', () => clearInterval(timer));
  });
  const { port } = await server.listen(0);
  const plain = connect({ port, ...FAST });
  const sampling = connect({ port, ...FAST, policies: [rttDegraded({ sampleEvery: 100 })] });
  try {
    for (const c of [plain, sampling]) {
      c.on('error', () => {});
      c.resume();
      await once(c, 'connect');
    }
    await sleep(1200);
    // The RTT is known only from a PONG: a client hearing from its server all along never pinged.
    assert.equal(plain.rtt, undefined, 'no ping towards a server heard from all along');
    assert.notEqual(sampling.rtt, undefined, 'a client with an RTT policy pings busy or not');
    talking = false;
    const deadline = Date.now() + 3000;
    while (plain.rtt === undefined && Date.now() < deadline) await sleep(20);
    assert.notEqual(plain.rtt, undefined, 'a quiet server is pinged');
  } finally {
    plain.destroy();
    sampling.destroy();
    await server.close(0);
  }
});

test('rttDegraded refuses a sampling period that is not a positive number', () => {
  for (const sampleEvery of [0, -1, Number.NaN]) {
    assert.throws(() => rttDegraded({ sampleEvery }), { code: 'ERR_LZ_INVALID_ARGUMENT' });
  }
});
