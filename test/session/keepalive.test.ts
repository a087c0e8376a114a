import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from '../../src/session/index.ts';
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
