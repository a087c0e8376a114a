import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { runApp } from '../../src/dsm/launcher.ts';
import { MAX_PENDING_HANDSHAKES, Mesh } from '../../src/dsm/mesh.ts';
import { type DsmMessage, decodeMessage, encodeMessage, JOINING } from '../../src/dsm/messages.ts';
import { startCoordinator } from '../../src/dsm/runtime.ts';
import { ErrorCodes, type LazarusError } from '../../src/wire/errors.ts';

const SECRET = 'correct horse battery staple';

function mesh(me: number, secret = SECRET) {
  const got: { from: number; msg: DsmMessage }[] = [];
  const lost: { node: number; err: LazarusError }[] = [];
  let nextJoiner = 1;
  const m = new Mesh({
    secret,
    me,
    onMessage: (from, msg) => got.push({ from, msg }),
    onPeerLost: (node, err) => lost.push({ node, err }),
    onJoin: () => nextJoiner++,
  });
  return { m, got, lost };
}

/** Sends raw bytes to a listener and collects what comes back until it closes the connection. */
function raw(port: number, bytes: Buffer): Promise<DsmMessage[]> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => s.write(bytes));
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const all = Buffer.concat(chunks);
      const out: DsmMessage[] = [];
      for (let at = 0; at + 5 <= all.length; ) {
        const len = all.readUInt32BE(at);
        out.push(decodeMessage(all[at + 4]!, all.subarray(at + 5, at + 5 + len)));
        at += 5 + len;
      }
      resolve(out);
    });
  });
}

const until = async (cond: () => boolean) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

describe('dsm mesh: authentication and bad input', () => {
  test('nodes sharing the secret connect, get ids, and exchange messages', async () => {
    const a = mesh(0);
    const b = mesh(JOINING);
    await a.m.listen();
    await b.m.listen();
    assert.equal(await b.m.connect('127.0.0.1', a.m.address.port), 0);
    assert.equal(b.m.me, 1);
    b.m.send(0, { type: 'ready' });
    a.m.send(1, { type: 'go' });
    await until(() => a.got.length > 0 && b.got.length > 0);
    assert.deepEqual(a.got, [{ from: 1, msg: { type: 'ready' } }]);
    assert.deepEqual(b.got, [{ from: 0, msg: { type: 'go' } }]);
    await Promise.all([a.m.close(), b.m.close()]);
  });

  test('a node with the wrong secret is refused both ways (AUTH_FAILED) and never becomes a peer', async () => {
    const a = mesh(0);
    await a.m.listen();
    const intruder = mesh(JOINING, 'not the right secret at all');
    await intruder.m.listen();
    await assert.rejects(
      intruder.m.connect('127.0.0.1', a.m.address.port),
      (err: LazarusError) => err.code === ErrorCodes.AUTH_FAILED,
    );
    // An intruder that answers the challenge with a made-up proof gets an AUTH_FAILED error frame.
    const hello = encodeMessage({
      type: 'hello',
      node: JOINING,
      nonce: Buffer.alloc(16, 1),
      host: '',
      port: 0,
    });
    const proof = encodeMessage({ type: 'proof', mac: Buffer.alloc(32, 2) });
    const replies = await raw(a.m.address.port, Buffer.concat([hello, proof]));
    assert.deepEqual(
      replies.map((r) => r.type),
      ['challenge', 'error'],
    );
    assert.equal((replies[1] as { code: string }).code, ErrorCodes.AUTH_FAILED);
    assert.deepEqual(a.m.peers(), []);
    await Promise.all([a.m.close(), intruder.m.close()]);
  });

  test('garbage, protocol messages before authentication and oversized frames get typed errors; the mesh keeps working', async () => {
    const a = mesh(0);
    await a.m.listen();
    const port = a.m.address.port;
    const cases: [Buffer, string][] = [
      [Buffer.from('GET / HTTP/1.1\r\n\r\n'), ErrorCodes.UNKNOWN_FRAME_TYPE],
      [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x51]), ErrorCodes.FRAME_TOO_LARGE],
      [Buffer.from([0, 0, 0, 1, 0x7f, 0]), ErrorCodes.UNKNOWN_FRAME_TYPE],
      [encodeMessage({ type: 'page-req', req: 1, pages: [0] }), ErrorCodes.PROTOCOL],
      [Buffer.from([0, 0, 0, 5, 0x41, 1, 2, 3, 4, 1]), ErrorCodes.BAD_MAGIC],
      [Buffer.from([0, 0, 0, 3, 0x41, 1, 2, 3]), ErrorCodes.MALFORMED_FRAME],
    ];
    for (const [bytes, code] of cases) {
      const replies = await raw(port, bytes);
      assert.equal(replies.length, 1, `${code}: ${JSON.stringify(replies)}`);
      assert.equal(replies[0]!.type, 'error');
      assert.equal((replies[0] as { code: string }).code, code);
    }
    const b = mesh(JOINING);
    await b.m.listen();
    assert.equal(await b.m.connect('127.0.0.1', port), 0);
    // After authentication a handshake message is a protocol violation: the peer is dropped.
    b.m.send(0, { type: 'proof', mac: Buffer.alloc(32) });
    await until(() => a.lost.length > 0);
    assert.equal(a.lost[0]!.err.code, ErrorCodes.PROTOCOL);
    await Promise.all([a.m.close(), b.m.close()]);
  });

  test('strangers holding handshakes open are capped; a node can still join once they go', async () => {
    const a = mesh(0);
    await a.m.listen();
    const port = a.m.address.port;
    const idle = await Promise.all(
      Array.from(
        { length: MAX_PENDING_HANDSHAKES + 5 },
        () =>
          new Promise<Socket>((resolve) => {
            const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
            s.on('error', () => {});
          }),
      ),
    );
    let closed = 0;
    for (const s of idle) s.once('close', () => closed++);
    await until(() => closed >= 5);
    // Exactly the ones over the cap were refused; the others wait for their 10 s handshake timeout.
    await new Promise((r) => setImmediate(r));
    assert.equal(closed, 5);
    for (const s of idle) s.destroy();
    await until(() => a.m.peers().length === 0);
    const b = mesh(JOINING);
    await b.m.listen();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await b.m.connect('127.0.0.1', port), 0);
    await Promise.all([a.m.close(), b.m.close()]);
  });

  test('an authenticated node asking for a page outside the space is cut off with a typed error; node 0 does not crash', async () => {
    const coordinator = await startCoordinator({
      app: 'sor',
      params: { n: 32, iters: 1 },
      nodes: 2,
      secret: SECRET,
    });
    const fake = mesh(JOINING);
    await fake.m.listen();
    await fake.m.connect('127.0.0.1', coordinator.address.port);
    await until(() => fake.got.some((g) => g.msg.type === 'start'));
    fake.m.send(0, { type: 'page-req', req: 1, pages: [123456] });
    await assert.rejects(coordinator.run, (err: LazarusError) => {
      assert.equal(err.code, ErrorCodes.DSM_PEER_LOST);
      assert.equal((err.cause as LazarusError).code, ErrorCodes.DSM_OUT_OF_RANGE);
      return true;
    });
    await until(() => fake.lost.length > 0);
    assert.equal(fake.lost[0]!.err.code, ErrorCodes.DSM_OUT_OF_RANGE);
    await fake.m.close();
  });

  test('intruders knocking on node 0 during a run change nothing: the result still equals sequential', async () => {
    const knocks: Promise<DsmMessage[]>[] = [];
    const r = await runApp({
      app: 'sor',
      params: { n: 40, iters: 2 },
      nodes: 2,
      onProgress: (e) => {
        if (e.kind !== 'listening') return;
        const hello = encodeMessage({ type: 'hello', node: 1, nonce: Buffer.alloc(16), host: '', port: 0 });
        knocks.push(
          raw(e.port, Buffer.concat([hello, encodeMessage({ type: 'proof', mac: Buffer.alloc(32) })])),
        );
        knocks.push(raw(e.port, Buffer.from('\x00\x00\x00\x02\x50hi')));
      },
    });
    assert.ok(r.check.ok, r.check.detail);
    const replies = await Promise.all(knocks);
    assert.deepEqual(
      replies.map((msgs) => msgs.map((m) => (m.type === 'error' ? m.code : m.type))),
      [['challenge', ErrorCodes.AUTH_FAILED], [ErrorCodes.MALFORMED_FRAME]],
    );
  });
});
