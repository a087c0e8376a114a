import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FaultProxy } from '../../src/faults/fault-proxy.ts';
import { earlyResumeProof, newClientNonce, resumeProof } from '../../src/session/credentials.ts';
import { connect, createServer, type SessionServer } from '../../src/session/index.ts';
import { decode, encode, FrameType } from '../../src/session/protocol.ts';
import { ReplayGuard } from '../../src/session/replay-guard.ts';
import { ErrorCodes, type LazarusError } from '../../src/wire/errors.ts';
import { openRaw, RawConnection, type RawSession } from '../helpers/raw-session.ts';

const SECRET = 'early resume test secret';

describe('ReplayGuard', () => {
  test('admits a proof once; a replay, a stale or future clock, or one from before the start is not', () => {
    const guard = new ReplayGuard(1000, 10, 5000);
    const proof = (n: number) => Buffer.alloc(32, n);
    assert.equal(guard.admit(proof(1), 6000, 6000), true, 'fresh proof admitted');
    assert.equal(guard.admit(proof(1), 6000, 6001), false, 'the same proof again is a replay');
    assert.equal(guard.admit(proof(2), 4999, 5000), false, 'sent before the server started');
    assert.equal(guard.admit(proof(3), 6000, 7001), false, 'older than the window');
    assert.equal(guard.admit(proof(4), 8002, 7001), false, 'further ahead than the window');
    assert.equal(guard.admit(proof(5), 7500, 7000), true, 'ahead, within the window (clock skew)');
  });

  test('forgets proofs once their clock is out of the window; memory stays within capacity', () => {
    const guard = new ReplayGuard(100, 3, 0);
    for (let i = 0; i < 3; i++)
      assert.equal(guard.admit(Buffer.alloc(32, i), 1000, 1000), true, `proof ${i}`);
    assert.equal(guard.admit(Buffer.alloc(32, 9), 1000, 1000), false, 'full: nothing new admitted');
    assert.equal(guard.size, 3, 'at capacity');
    // Later, the old proofs' clocks are outside the window: forgotten, and new ones fit again.
    assert.equal(guard.admit(Buffer.alloc(32, 9), 1200, 1200), true, 'room after the old ones expired');
    assert.equal(guard.size, 1, 'the expired proofs were forgotten');
    // A forgotten proof still cannot be replayed: its clock is out of the window.
    assert.equal(guard.admit(Buffer.alloc(32, 0), 1000, 1200), false, 'old proof refused by its clock');
  });
});

test('early resume settings must be positive numbers (ERR_LZ_INVALID_ARGUMENT)', () => {
  for (const bad of [{ window: 0 }, { window: -1 }, { capacity: 0 }, { window: Number.NaN }]) {
    assert.throws(
      () => createServer({ secret: SECRET, earlyResume: bad }),
      (err: LazarusError) => err.code === ErrorCodes.INVALID_ARGUMENT,
      JSON.stringify(bad),
    );
  }
});

describe('early resume against a live server', () => {
  let server: SessionServer;
  let strict: SessionServer;
  let port: number;
  let strictPort: number;
  before(async () => {
    const echo = (s: import('../../src/session/index.ts').ServerSession) => {
      s.on('data', (d: Buffer) => s.write(d));
      s.on('error', () => {});
    };
    server = createServer({ secret: SECRET, serverId: 'early-a' }, echo);
    strict = createServer({ secret: SECRET, serverId: 'strict', earlyResume: false }, echo);
    port = (await server.listen(0)).port;
    strictPort = (await strict.listen(0)).port;
  });
  after(async () => {
    await server.close(0);
    await strict.close(0);
  });

  function earlyFrame(
    s: RawSession,
    serverId: string,
    sentAt = Date.now(),
    nonce = newClientNonce(),
  ): Buffer {
    return encode.earlyResume({
      ticket: s.ticket,
      proof: earlyResumeProof(s.secret, serverId, nonce, sentAt, s.sessionId),
      received: 0,
      serverId,
      clientNonce: nonce,
      sentAt,
    });
  }

  async function opened(at: number): Promise<RawSession> {
    const s = await openRaw(at);
    s.conn.destroy();
    return s;
  }

  /** Sends `frame` on a fresh connection as the first thing said; returns the reply after the hello. */
  async function sendEarly(at: number, frame: Buffer): Promise<{ conn: RawConnection; reply: number }> {
    const conn = await RawConnection.connect(at);
    conn.send(frame);
    const hello = await conn.next();
    assert.equal(hello.type, FrameType.SERVER_HELLO, 'the answer starts with the hello');
    return { conn, reply: (await conn.next()).type };
  }

  test('resumes with the connect: RESUMED comes without the client answering the hello', async () => {
    const s = await opened(port);
    const { conn, reply } = await sendEarly(port, earlyFrame(s, 'early-a'));
    assert.equal(reply, FrameType.RESUMED, 'resumed at once');
    conn.destroy();
  });

  test('a replayed early resume gets CHALLENGE; answering the nonce then resumes', async () => {
    const s = await opened(port);
    const frame = earlyFrame(s, 'early-a');
    const first = await sendEarly(port, frame);
    assert.equal(first.reply, FrameType.RESUMED, 'first use admitted');
    first.conn.destroy();
    const { conn, reply } = await sendEarly(port, frame);
    assert.equal(reply, FrameType.CHALLENGE, 'the replay is not admitted');
    const hello = decode.serverHello(conn.frames[0]!.body);
    conn.send(
      encode.resume({
        ticket: s.ticket,
        proof: resumeProof(s.secret, hello.nonce, s.sessionId),
        received: 0,
      }),
    );
    await conn.expect(FrameType.RESUMED);
    conn.destroy();
  });

  test('stale clock, another member or a server with early resume off: CHALLENGE, never RESUMED', async () => {
    const s = await opened(port);
    for (const [what, at, frame] of [
      ['stale clock', port, earlyFrame(s, 'early-a', Date.now() - 120_000)],
      ['proof for another member', port, earlyFrame(s, 'early-b')],
      ['early resume off', strictPort, earlyFrame(s, 'strict')],
    ] as const) {
      const { conn, reply } = await sendEarly(at, frame);
      assert.equal(reply, FrameType.CHALLENGE, what);
      conn.destroy();
    }
  });

  test('a wrong proof is refused (AUTH_FAILED); a second early resume after a challenge is a protocol error', async () => {
    const s = await opened(port);
    const forged = Buffer.from(earlyFrame(s, 'early-a'));
    // The proof sits right after the ticket: flip a byte of it.
    const at = 5 + 5 + 2 + s.ticket.length;
    forged.writeUInt8(forged.readUInt8(at) ^ 1, at);
    const bad = await RawConnection.connect(port);
    bad.send(forged);
    await bad.waitClosed();
    assert.deepEqual(
      bad.refusals().map((r) => r.code),
      [ErrorCodes.AUTH_FAILED],
      'forged proof refused',
    );
    const stale = earlyFrame(s, 'early-a', Date.now() - 120_000);
    const twice = await RawConnection.connect(port);
    twice.send(stale);
    await twice.hello();
    await twice.expect(FrameType.CHALLENGE);
    twice.send(earlyFrame(s, 'early-a'));
    await twice.waitClosed();
    assert.deepEqual(
      twice.refusals().map((r) => r.code),
      [ErrorCodes.PROTOCOL],
      'only one early resume per connection',
    );
  });

  test('a client falls back to the challenge by itself (server with early resume off)', async () => {
    const proxy = new FaultProxy({ targetPort: strictPort });
    const c = connect({ port: (await proxy.listen()).port, reconnectDelay: 5 });
    try {
      c.on('error', () => {});
      await new Promise((resolve) => c.once('connect', resolve));
      let got = '';
      c.on('data', (d: Buffer) => {
        got += d.toString();
      });
      c.write('one;');
      await waitUntil(() => got === 'one;', 'first echo');
      // Break the connection: the client resumes, first early (the member is known by id after
      // the hello), is challenged, answers, and the stream goes on.
      assert.equal(proxy.breakAll('reset'), 1, 'one connection broken');
      await new Promise((resolve) => c.once('resumed', resolve));
      c.write('two;');
      await waitUntil(() => got === 'one;two;', 'echo after the resume');
    } finally {
      c.destroy();
      await proxy.close();
    }
  });
});

async function waitUntil(predicate: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
