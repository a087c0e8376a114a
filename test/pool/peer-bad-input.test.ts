import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import {
  type Continuation,
  decodeContinuation,
  encodeContinuation,
} from '../../src/continuation/continuation.ts';
import { PeerLink } from '../../src/pool/peer-link.ts';
import {
  decodePeer,
  encodePeer,
  PEER_MAGIC,
  PeerFrame,
  peerDecoderOptions,
  peerProof,
} from '../../src/pool/peer-protocol.ts';
import { type ClientSession, connect } from '../../src/session/index.ts';
import { isLazarusError } from '../../src/wire/errors.ts';
import { FRAME_HEADER_SIZE } from '../../src/wire/frame.ts';
import { FrameDecoder } from '../../src/wire/frame-decoder.ts';
import { checkpointingEcho, startPool, TEST_SECRET, type TestPool } from '../helpers/pool.ts';
import { within } from '../helpers/streams.ts';

/**
 * Bad input on the server-to-server channel: an unauthenticated peer, a PULL before
 * authentication, garbage, oversized frames, a PULL for an unknown session or for the wrong new
 * owner. Each is refused ('peerError', diagnostics channel 'lazarus:pool:refused'), and nothing is
 * handed over: a session streaming on the attacked member stays there and stays byte-exact.
 * Plus property tests of the decoders (only LazarusErrors, round trips, offset checks).
 */

let pool: TestPool;
let client: ClientSession;
let sent = '';
let got = '';
const peerErrors: { code: string; message: string }[] = [];
const refusedOnChannel: { error: { code: string } }[] = [];
const onRefused = (m: unknown) => refusedOnChannel.push(m as { error: { code: string } });

before(async () => {
  diagnostics_channel.subscribe('lazarus:pool:refused', onRefused);
  pool = await startPool(3, checkpointingEcho);
  for (const s of pool.servers) {
    s.on('peerError', (e: { code: string; message: string }) => peerErrors.push(e));
  }
  client = connect({ port: pool.member('a').port });
  client.on('error', () => {});
  client.on('data', (d: Buffer) => {
    got += d.toString();
  });
  await within(5000, 'open', once(client, 'connect'));
});

after(async () => {
  diagnostics_channel.unsubscribe('lazarus:pool:refused', onRefused);
  client.destroy();
  await pool.close();
});

/** The session on a still answers, byte-exact, and is still a's alone. */
async function sessionIntact(label: string): Promise<void> {
  const msg = `${label};`;
  sent += msg;
  client.write(msg);
  await within(
    3000,
    `${label}: echo`,
    waitFor(() => got === sent),
  );
  assert.deepEqual(pool.owners(client.sessionId!), ['a'], `${label}: the session stays on a`);
}

/** A raw TCP peer: reads the PEER_HELLO, then lets the test write what it wants. */
async function rawPeer(): Promise<{
  socket: net.Socket;
  nonce: Buffer;
  frames: number[];
  closed: Promise<void>;
}> {
  const socket = net.connect({ port: pool.member('a').peerPort, host: '127.0.0.1' });
  socket.on('error', () => {});
  const frames: number[] = [];
  let hello: ((nonce: Buffer) => void) | undefined;
  const gotHello = new Promise<Buffer>((resolve) => {
    hello = resolve;
  });
  const decoder = new FrameDecoder(
    {
      onFrame: (type, body) => {
        frames.push(type);
        if (type === PeerFrame.HELLO) hello?.(decodePeer.hello(body).nonce);
      },
      onStreamStart: () => {},
      onStreamChunk: () => {},
    },
    peerDecoderOptions(1 << 20),
  );
  socket.on('data', (c: Buffer) => {
    try {
      decoder.push(c);
    } catch {
      socket.destroy();
    }
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const nonce = await within(3000, 'peer hello', gotHello);
  return { socket, nonce, frames, closed };
}

function lastPeerError(): string | undefined {
  return peerErrors.at(-1)?.code;
}

test('a peer with the wrong secret is refused, reported and logged; nothing handed over', async () => {
  await sessionIntact('start');
  const errorsBefore = peerErrors.length;
  const loggedBefore = refusedOnChannel.length;
  await assert.rejects(
    PeerLink.dial(
      '127.0.0.1',
      pool.member('a').peerPort,
      { selfId: 'b', secret: Buffer.from('wrong') },
      2000,
    ),
    (err: unknown) => isLazarusError(err),
    'the dial fails with a LazarusError',
  );
  await within(
    2000,
    'peerError',
    waitFor(() => peerErrors.length > errorsBefore),
  );
  assert.equal(lastPeerError(), 'ERR_LZ_PEER_AUTH_FAILED', 'peerError ERR_LZ_PEER_AUTH_FAILED');
  assert.ok(
    refusedOnChannel.slice(loggedBefore).some((m) => m.error.code === 'ERR_LZ_PEER_AUTH_FAILED'),
    'logged on lazarus:pool:refused',
  );
  await sessionIntact('after wrong secret');
});

test('a PULL before authentication is refused; the session stays', async () => {
  const peer = await rawPeer();
  const before = peerErrors.length;
  peer.socket.write(encodePeer.pull(1, Buffer.from(client.sessionId!, 'hex'), 'b', 0));
  await within(3000, 'connection closed', peer.closed);
  assert.ok(!peer.frames.includes(PeerFrame.CONTINUATION), 'no continuation sent');
  assert.ok(peer.frames.includes(PeerFrame.REFUSED), 'told why (PEER_REFUSED)');
  assert.ok(peerErrors.length > before, 'peerError emitted');
  assert.equal(lastPeerError(), 'ERR_LZ_PEER_AUTH_FAILED', 'as an authentication failure');
  await sessionIntact('after forged pull');
});

test('an AUTH with a forged proof followed by a PULL: refused, nothing handed over', async () => {
  const peer = await rawPeer();
  const forged = peerProof(Buffer.from('guess'), 'lz-peer-auth', peer.nonce, 'b');
  peer.socket.write(
    Buffer.concat([
      encodePeer.auth('b', forged, Buffer.alloc(32, 1)),
      encodePeer.pull(1, Buffer.from(client.sessionId!, 'hex'), 'b', 0),
    ]),
  );
  await within(3000, 'connection closed', peer.closed);
  assert.ok(!peer.frames.includes(PeerFrame.CONTINUATION), 'no continuation sent');
  await sessionIntact('after forged auth');
});

test('garbage bytes and oversized frames are refused and logged', async () => {
  const samples = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 200 }), { numRuns: 15, seed: 42 });
  const cases: Buffer[] = [
    ...samples.map((b) => Buffer.from(b)),
    // Length above the peer channel's maximum (256 MiB).
    Buffer.from([0xff, 0xff, 0xff, 0xff, PeerFrame.AUTH]),
    // A known type with a body that does not parse.
    Buffer.from([0, 0, 0, 3, PeerFrame.AUTH, 1, 2, 3]),
  ];
  for (const bytes of cases) {
    const peer = await rawPeer();
    peer.socket.write(bytes);
    // A prefix of a valid frame may just wait for more: end our side so the server must decide.
    peer.socket.end();
    await within(3000, `closed after ${bytes.subarray(0, 8).toString('hex')}`, peer.closed);
    assert.ok(!peer.frames.includes(PeerFrame.CONTINUATION), 'no continuation sent');
    assert.ok(!peer.frames.includes(PeerFrame.WELCOME), 'not welcomed');
  }
  assert.ok(
    refusedOnChannel.some((m) => m.error.code === 'ERR_LZ_FRAME_TOO_LARGE'),
    'an oversized frame is logged as ERR_LZ_FRAME_TOO_LARGE',
  );
  await sessionIntact('after garbage');
});

test('a frame announced larger than any handshake needs is refused before authentication', {}, async () => {
  const peer = await rawPeer();
  // An AUTH frame announcing 64 MiB: the server should refuse on the header, not buffer it.
  const header = Buffer.alloc(FRAME_HEADER_SIZE);
  header.writeUInt32BE(64 * 1024 * 1024, 0);
  header[4] = PeerFrame.AUTH;
  peer.socket.write(header);
  peer.socket.write(Buffer.alloc(1024 * 1024));
  await within(1500, 'refused on the header', peer.closed);
  await sessionIntact('after big pre-auth frame');
});

/** An authenticated peer link to member a, as member `selfId`. */
function dialA(selfId: string): Promise<PeerLink> {
  return PeerLink.dial(
    '127.0.0.1',
    pool.member('a').peerPort,
    { selfId, secret: Buffer.from(TEST_SECRET) },
    2000,
  );
}

test('an authenticated PULL for an unknown session is refused with ERR_LZ_UNKNOWN_SESSION', async () => {
  const link = await dialA('b');
  try {
    const result = await link.pull(Buffer.alloc(16, 0xab), 'b', 0, 2000);
    assert.equal(result.kind, 'refused', 'refused');
    assert.equal(result.kind === 'refused' ? result.code : '', 'ERR_LZ_UNKNOWN_SESSION', 'unknown session');
  } finally {
    link.close();
  }
  await sessionIntact('after unknown pull');
});

test('an authenticated PULL naming another new owner than the puller (or a non-member) is refused', {}, async () => {
  const link = await dialA('c');
  try {
    const result = await link.pull(Buffer.from(client.sessionId!, 'hex'), 'zz-not-a-member', 0, 2000);
    assert.equal(result.kind, 'refused', 'a pull for a non-member new owner is refused');
  } finally {
    link.close();
  }
  await sessionIntact('after mismatched owner');
});

test('an authenticated PUSH of a malformed or already-held session is refused; nothing adopted', async () => {
  const link = await dialA('b');
  try {
    assert.equal(await link.push([Buffer.from('not a continuation')], 2000), 'refused', 'garbage refused');
    // A well-formed continuation of the session a already holds: a keeps its own.
    const own = encodeContinuation({
      sessionId: Buffer.from(client.sessionId!, 'hex'),
      epoch: 99,
      snapshot: undefined,
      inputOffset: 0,
      outputOffset: 0,
      inputLog: Buffer.alloc(0),
      finReceived: false,
      outputStart: 0,
      acked: 0,
      output: Buffer.alloc(0),
      finQueued: false,
    });
    assert.equal(await link.push([own], 2000), 'refused', 'a session already here is not replaced');
  } finally {
    link.close();
  }
  await sessionIntact('after bad pushes');
});

// ---- decoders ----

const continuationArb: fc.Arbitrary<Continuation> = fc
  .record({
    sessionId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    epoch: fc.nat({ max: 0xffffffff }),
    snapshot: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
    inputOffset: fc.nat({ max: 2 ** 40 }),
    inputLog: fc.uint8Array({ maxLength: 64 }),
    finReceived: fc.boolean(),
    outputStart: fc.nat({ max: 2 ** 40 }),
    output: fc.uint8Array({ maxLength: 64 }),
    a: fc.nat(),
    b: fc.nat(),
    finQueued: fc.boolean(),
  })
  .map((r) => {
    // Consistent offsets: outputStart <= outputOffset, acked <= end.
    const len = r.output.length;
    return {
      sessionId: Buffer.from(r.sessionId),
      epoch: r.epoch,
      snapshot: r.snapshot ? Buffer.from(r.snapshot) : undefined,
      inputOffset: r.inputOffset,
      outputOffset: r.outputStart + (len === 0 ? 0 : r.a % (len + 1)),
      inputLog: Buffer.from(r.inputLog),
      finReceived: r.finReceived,
      outputStart: r.outputStart,
      acked: r.outputStart + (len === 0 ? 0 : r.b % (len + 1)),
      output: Buffer.from(r.output),
      finQueued: r.finQueued,
    };
  });

test('decodeContinuation: random bytes raise only LazarusErrors', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        decodeContinuation(Buffer.from(bytes));
      } catch (err) {
        assert.ok(isLazarusError(err), `only LazarusErrors, got ${String(err)}`);
      }
    }),
    { numRuns: 2000 },
  );
});

test('decodeContinuation: valid continuations round-trip; mutated ones decode or fail typed', () => {
  fc.assert(
    fc.property(continuationArb, fc.nat(), fc.nat({ max: 255 }), (c, at, v) => {
      const body = encodeContinuation(c);
      assert.deepEqual(decodeContinuation(body), c, 'round trip');
      const mutated = Buffer.from(body);
      mutated[at % mutated.length] = v;
      try {
        decodeContinuation(mutated);
      } catch (err) {
        assert.ok(isLazarusError(err), `only LazarusErrors, got ${String(err)}`);
      }
    }),
    { numRuns: 1000 },
  );
});

test('decodeContinuation: inconsistent output offsets are rejected', () => {
  fc.assert(
    fc.property(
      continuationArb,
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 1, max: 1000 }),
      (c, which, d) => {
        const end = c.outputStart + c.output.length;
        const bad: Continuation =
          which === 0
            ? { ...c, outputOffset: c.outputStart - d } // checkpoint before the log's start
            : which === 1
              ? { ...c, outputOffset: end + d } // checkpoint past the output
              : which === 2
                ? { ...c, acked: c.outputStart - d } // acked before the log's start
                : { ...c, acked: end + d }; // acked beyond what was sent
        if (bad.outputOffset < 0 || bad.acked < 0) return;
        assert.throws(
          () => decodeContinuation(encodeContinuation(bad)),
          (err: unknown) => isLazarusError(err) && err.code === 'ERR_LZ_MALFORMED_FRAME',
          `rejected (case ${which})`,
        );
      },
    ),
    { numRuns: 1000 },
  );
});

test('decodeContinuation: offsets whose sums leave the safe integer range are rejected', {}, () => {
  const c: Continuation = {
    sessionId: Buffer.alloc(16),
    epoch: 1,
    snapshot: undefined,
    inputOffset: Number.MAX_SAFE_INTEGER,
    outputOffset: 0,
    inputLog: Buffer.from('xyz'),
    finReceived: false,
    outputStart: 0,
    acked: 0,
    output: Buffer.alloc(0),
    finQueued: false,
  };
  assert.throws(
    () => decodeContinuation(encodeContinuation(c)),
    (err: unknown) => isLazarusError(err),
    'a received offset of 2^53 + 1 is refused',
  );
});

test('every decodePeer decoder: random bodies raise only LazarusErrors', () => {
  const decoders = Object.entries(decodePeer) as [string, (b: Buffer) => unknown][];
  fc.assert(
    fc.property(
      fc.constantFrom(...decoders),
      fc.uint8Array({ maxLength: 120 }),
      ([name, decodeFn], bytes) => {
        try {
          decodeFn(Buffer.from(bytes));
        } catch (err) {
          assert.ok(isLazarusError(err), `${name}: only LazarusErrors, got ${String(err)}`);
        }
      },
    ),
    { numRuns: 3000 },
  );
});

test('every decodePeer decoder: valid frames round-trip', () => {
  const body = (frame: Buffer) => frame.subarray(FRAME_HEADER_SIZE);
  const id = fc.string({ maxLength: 40 });
  const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));
  const u32 = fc.nat({ max: 0xffffffff });
  fc.assert(
    fc.property(bytes32, id, (nonce, who) => {
      assert.deepEqual(decodePeer.hello(body(encodePeer.hello(nonce, who))), { nonce, id: who });
    }),
  );
  fc.assert(
    fc.property(id, bytes32, bytes32, (who, proof, nonce) => {
      assert.deepEqual(decodePeer.auth(body(encodePeer.auth(who, proof, nonce))), { id: who, proof, nonce });
    }),
  );
  fc.assert(
    fc.property(bytes32, (proof) =>
      assert.deepEqual(decodePeer.welcome(body(encodePeer.welcome(proof))), proof),
    ),
  );
  fc.assert(
    fc.property(id, id, (code, message) =>
      assert.deepEqual(decodePeer.refused(body(encodePeer.refused(code, message))), { code, message }),
    ),
  );
  fc.assert(
    fc.property(u32, fc.uint8Array({ minLength: 16, maxLength: 16 }), id, u32, (n, sid, owner, epoch) => {
      const sessionId = Buffer.from(sid);
      assert.deepEqual(decodePeer.pull(body(encodePeer.pull(n, sessionId, owner, epoch))), {
        id: n,
        sessionId,
        newOwner: owner,
        epoch,
      });
    }),
  );
  fc.assert(
    fc.property(u32, fc.uint8Array({ maxLength: 200 }), (n, b) => {
      const payload = Buffer.from(b);
      const out = decodePeer.continuation(body(encodePeer.continuation(n, payload)));
      assert.equal(out.id, n);
      assert.deepEqual(Buffer.from(out.body), payload);
    }),
  );
  fc.assert(
    fc.property(u32, fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 5 }), (n, pieces) => {
      const parts = pieces.map((b) => Buffer.from(b));
      const out = decodePeer.push(body(Buffer.concat(encodePeer.pushParts(n, parts))));
      assert.equal(out.id, n);
      assert.deepEqual(Buffer.from(out.body), Buffer.concat(parts));
    }),
  );
  fc.assert(
    fc.property(u32, id, id, (n, code, message) => {
      assert.deepEqual(decodePeer.pushAck(body(encodePeer.pushAck(n))), { id: n });
      assert.deepEqual(decodePeer.pushRefused(body(encodePeer.pushRefused(n, code, message))), {
        id: n,
        code,
        message,
      });
    }),
  );
  fc.assert(
    fc.property(u32, id, id, id, (n, code, message, redirect) =>
      assert.deepEqual(decodePeer.pullRefused(body(encodePeer.pullRefused(n, { code, message, redirect }))), {
        id: n,
        code,
        message,
        redirect,
      }),
    ),
  );
  fc.assert(
    fc.property(u32, u32, (n, deadlineMs) =>
      assert.deepEqual(decodePeer.drain(body(encodePeer.drain(n, deadlineMs))), { id: n, deadlineMs }),
    ),
  );
  fc.assert(
    fc.property(u32, u32, u32, u32, (n, moved, remaining, ms) =>
      assert.deepEqual(decodePeer.drainReport(body(encodePeer.drainReport(n, { moved, remaining, ms }))), {
        id: n,
        moved,
        remaining,
        ms,
      }),
    ),
  );
  // The hello's magic is checked.
  const hello = Buffer.from(body(encodePeer.hello(Buffer.alloc(32), 'x')));
  hello.writeUInt32BE(PEER_MAGIC ^ 1, 0);
  assert.throws(
    () => decodePeer.hello(hello),
    (err: unknown) => isLazarusError(err) && err.code === 'ERR_LZ_BAD_MAGIC',
  );
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
