import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { test } from 'node:test';
import { type ClientSession, connect, createServer, type ServerSession } from '../../src/session/index.ts';
import { pattern, patternHash, readAll, within } from '../helpers/streams.ts';

const MiB = 1024 * 1024;

/** Writes pattern(seed, total, maxWrite) honouring backpressure, ends, and returns the sha-256 of what it wrote. */
async function writeHashed(stream: Writable, seed: number, total: number, maxWrite: number): Promise<string> {
  const hash = createHash('sha256');
  for (const chunk of pattern(seed, total, maxWrite)) {
    hash.update(chunk);
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  stream.end();
  return hash.digest('hex');
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

test('256 MiB each way at the same time in one session, byte-exact', async (t) => {
  const TOTAL = 256 * MiB;
  const MAX_WRITE = 256 * 1024;
  let serverSide: Promise<[{ bytes: number; hash: string }, string]> | undefined;
  let peakUnacked = 0;
  // Half-open on both sides, as each side ends when it is done writing: with the default (as with
  // net.Socket) a side whose peer ended first ends its own writing too, and the slower writer's last
  // writes fail or wait for a 'drain' that never comes. Which side is slower varies under load.
  const server = createServer({ allowHalfOpen: true }, (session) => {
    serverSide = Promise.all([readAll(session), writeHashed(session, 2, TOTAL, MAX_WRITE)]);
  });
  const { port } = await server.listen();
  const client = connect({ port, allowHalfOpen: true });
  try {
    const sample = setInterval(() => {
      peakUnacked = Math.max(peakUnacked, client.unacknowledged);
    }, 5);
    const started = Date.now();
    const [clientGot, clientSent] = await within(
      45_000,
      '256 MiB both ways',
      Promise.all([readAll(client), writeHashed(client, 1, TOTAL, MAX_WRITE)]),
    );
    clearInterval(sample);
    assert.ok(serverSide, 'the server got the session');
    const [serverGot, serverSent] = await within(10_000, 'server side', serverSide);
    const ms = Date.now() - started;
    assert.equal(clientGot.bytes, TOTAL, 'client received everything');
    assert.equal(serverGot.bytes, TOTAL, 'server received everything');
    assert.equal(clientGot.hash, serverSent, 'server-to-client stream differs');
    assert.equal(serverGot.hash, clientSent, 'client-to-server stream differs');
    assert.equal(client.bytesWritten, TOTAL);
    assert.equal(client.bytesRead, TOTAL);
    // Writes honoured backpressure: what is held for retransmission never grew far past the budget.
    assert.ok(peakUnacked <= 8 * MiB + MAX_WRITE, `peak unacknowledged ${peakUnacked}`);
    t.diagnostic(`2 x 256 MiB in ${ms} ms (${((2 * TOTAL) / MiB / (ms / 1000)).toFixed(0)} MiB/s both ways)`);
    await within(
      5000,
      'client close',
      new Promise((r) => (client.destroyed ? r(0) : client.once('close', r))),
    );
    await within(
      5000,
      'server to forget the session',
      waitUntil(() => server.sessions.size === 0),
    );
  } finally {
    // After a failure too: a client left open would keep the server's close waiting for ever.
    client.destroy();
    await server.close();
  }
});

test('1,000 concurrent sessions on one server, each exchanging a message both ways and ending', async (t) => {
  const N = 1000;
  const UP = 3000;
  const DOWN = 2000;
  const limit = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
  assert.ok(
    Number.isNaN(limit) || limit >= 2 * N + 200,
    `open-file limit ${limit} is too low for ${N} sessions (needs ~${2 * N + 200})`,
  );
  const serverResults = new Map<number, { bytes: number; hash: string }>();
  const serverErrors: Error[] = [];
  let handed = 0;
  const server = createServer({ resumeTimeout: 10_000 }, (session: ServerSession) => {
    handed++;
    // The first 4 bytes name the client; the server answers with that client's message right away.
    let index = -1;
    const hash = createHash('sha256');
    let bytes = 0;
    let head = Buffer.alloc(0);
    session.on('data', (chunk: Buffer) => {
      if (index < 0) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 4) return;
        index = head.readUInt32BE(0);
        chunk = head.subarray(4);
        for (const out of pattern(100_000 + index, DOWN, 700)) session.write(out);
        session.end();
      }
      bytes += chunk.length;
      hash.update(chunk);
    });
    session.on('end', () => serverResults.set(index, { bytes, hash: hash.digest('hex') }));
    session.on('error', (err) => serverErrors.push(err));
  });
  const { port } = await server.listen();
  try {
    const started = Date.now();
    // All sessions open first, so that all of them are live on the server at once.
    const clients: ClientSession[] = Array.from({ length: N }, () =>
      connect({ port, connectTimeout: 20_000, resumeTimeout: 10_000 }),
    );
    await within(
      30_000,
      `${N} sessions to open`,
      Promise.all(clients.map((client) => once(client, 'connect'))),
    );
    await within(
      5000,
      'server to hand over every session',
      waitUntil(() => handed === N),
    );
    assert.equal(server.sessions.size, N, 'all sessions live on the server at once');
    const opened = Date.now() - started;
    const results = await within(
      90_000,
      `${N} exchanges`,
      Promise.all(
        clients.map(async (client, index) => {
          const received = readAll(client);
          const head = Buffer.alloc(4);
          head.writeUInt32BE(index);
          client.write(head);
          for (const out of pattern(index, UP, 500)) client.write(out);
          client.end();
          const got = await received;
          await new Promise((r) => (client.destroyed ? r(0) : client.once('close', r)));
          return got;
        }),
      ),
    );
    const ms = Date.now() - started;
    for (const [index, got] of results.entries()) {
      assert.equal(got.bytes, DOWN, `client ${index} received ${got.bytes} bytes`);
      assert.equal(got.hash, patternHash(100_000 + index, DOWN, 700), `client ${index} stream differs`);
    }
    assert.equal(serverResults.size, N, 'every session reached the server and ended');
    for (let index = 0; index < N; index++) {
      const got = serverResults.get(index);
      assert.equal(got?.bytes, UP, `server got ${got?.bytes} bytes from client ${index}`);
      assert.equal(got.hash, patternHash(index, UP, 500), `server-side stream of client ${index} differs`);
    }
    assert.deepEqual(serverErrors, []);
    await within(
      5000,
      'server sessions to empty',
      waitUntil(() => server.sessions.size === 0),
    );
    assert.ok(
      clients.every((c) => c.destroyed && c.status === 'closed'),
      'every client closed',
    );
    t.diagnostic(`${N} sessions: opened in ${opened} ms, all exchanged and closed in ${ms} ms`);
  } finally {
    await server.close();
  }
});
