import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { deriveSessionSecret, mintTicket, resumeProof } from '../../src/session/credentials.ts';
import { connect, createServer, type ServerSession } from '../../src/session/index.ts';
import {
  DATA_PREFIX_SIZE,
  encode,
  FrameType,
  MAGIC,
  PROOF_SIZE,
  SESSION_ID_SIZE,
  VERSION,
} from '../../src/session/protocol.ts';
import { type ErrorCode, ErrorCodes, LazarusError } from '../../src/wire/errors.ts';
import { encodeFrame, FRAME_HEADER_SIZE } from '../../src/wire/frame.ts';
import { openRaw, RawConnection, type RawSession, resumeRaw } from '../helpers/raw-session.ts';
import { pattern, type Received, readAll, within } from '../helpers/streams.ts';

// One live server takes every kind of bad input a client can send, while a healthy session streams
// both ways through it the whole time. For each bad input: the typed refusal (where one is sent), the
// connection closed, the server's 'connectionError' with the right code, the server still opening
// sessions; at the end, the healthy session's streams byte-exact both ways and the server alive.

const HANDSHAKE_MS = 300;
const MAX_FRAME = 64 * 1024;
const POOL_SECRET = Buffer.from('bad-input test pool secret, 32 b');
/** Codes a connection may fail with on arbitrary bytes. */
const RANDOM_CODES: ReadonlySet<string> = new Set([
  ErrorCodes.UNKNOWN_FRAME_TYPE,
  ErrorCodes.FRAME_TOO_LARGE,
  ErrorCodes.FRAME_TRUNCATED,
  ErrorCodes.MALFORMED_FRAME,
  ErrorCodes.BAD_MAGIC,
  ErrorCodes.UNSUPPORTED_VERSION,
  ErrorCodes.PROTOCOL,
]);
/** Codes the server detects while reading, so it tells the client in a REFUSED before closing. */
const REFUSED_CODES: ReadonlySet<string> = new Set([
  ErrorCodes.UNKNOWN_FRAME_TYPE,
  ErrorCodes.FRAME_TOO_LARGE,
  ErrorCodes.MALFORMED_FRAME,
  ErrorCodes.BAD_MAGIC,
  ErrorCodes.UNSUPPORTED_VERSION,
]);

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Writes a never-ending pattern, paced, until `stop.stopped`; then ends. Returns what it wrote. */
async function streamUntil(
  stream: NodeJS.WritableStream & { destroyed: boolean },
  seed: number,
  stop: { stopped: boolean },
): Promise<Received> {
  const hash = createHash('sha256');
  let bytes = 0;
  for (const chunk of pattern(seed, Number.POSITIVE_INFINITY, 8 * 1024)) {
    if (stop.stopped || stream.destroyed) break;
    hash.update(chunk);
    bytes += chunk.length;
    if (!stream.write(chunk)) {
      // A stream destroyed without an error emits neither 'drain' nor 'error': stop on 'close' too.
      const emitter = stream as NodeJS.EventEmitter;
      await Promise.race([once(emitter, 'drain'), once(emitter, 'close')]);
    } else await sleep(1);
  }
  stream.end();
  return { bytes, hash: hash.digest('hex') };
}

async function waitFor(what: string, ms: number, predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

function frameWithBody(type: number, body: Uint8Array): Buffer {
  return encodeFrame(type, body);
}

/** An OPEN/RESUME-style hello body with the given magic and version. */
function helloBody(magic: number, version: number): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(magic, 0);
  b[4] = version;
  return b;
}

function header(length: number, type: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_SIZE);
  h.writeUInt32BE(length, 0);
  h[4] = type;
  return h;
}

test('bad input against a live server: typed refusals, server up, other sessions unaffected', async (t) => {
  // ---- the server and its events ----
  const connectionErrors: unknown[] = [];
  let seenErrors = 0;
  const sessionErrors: Array<{ err: Error; id: string }> = [];
  let healthyServer: ServerSession | undefined;
  const server = createServer(
    { handshakeTimeout: HANDSHAKE_MS, maxFrameSize: MAX_FRAME, resumeTimeout: 5000, secret: POOL_SECRET },
    (session) => {
      if (!healthyServer) {
        healthyServer = session;
        return;
      }
      // Every other session (probes, sessions opened by hand) echoes.
      session.pipe(session);
    },
  );
  server.on('connectionError', (err: unknown) => connectionErrors.push(err));
  server.on('sessionError', (err: Error, session: ServerSession) =>
    sessionErrors.push({ err, id: session.sessionId }),
  );
  const { port } = await server.listen();
  const raws: RawConnection[] = [];
  const track = <T extends { conn: RawConnection } | RawConnection>(x: T): T => {
    raws.push(x instanceof RawConnection ? x : x.conn);
    return x;
  };
  const dial = async () => track(await RawConnection.connect(port));

  /** The next 'connectionError' the server emits; each bad connection must cause exactly one. */
  async function nextConnectionError(ms = 3000): Promise<LazarusError> {
    await waitFor('a connectionError event', ms, () => connectionErrors.length > seenErrors);
    const err = connectionErrors[seenErrors++];
    assert.ok(err instanceof LazarusError, `connectionError with a non-LazarusError: ${String(err)}`);
    return err;
  }

  /**
   * The connection was refused with `code`: closed, 'connectionError' fired with that code and, unless
   * `refused` is false, a REFUSED frame with that code was the last thing the server sent. Unless
   * `greeted` is false, the client spoke first and so got the server's hello before anything else.
   */
  async function expectRefusal(
    conn: RawConnection,
    code: ErrorCode,
    refused = true,
    greeted = true,
  ): Promise<void> {
    // A refused connection closes at once (REFUSED then FIN), not by the server's 2 s fallback destroy.
    await conn.waitClosed(refused ? 1500 : 3000);
    assert.equal(conn.decodeError, undefined, 'the server sent frames its own decoder refuses');
    const err = await nextConnectionError();
    assert.equal(err.code, code, `connectionError code (${err.message})`);
    const refusals = conn.refusals();
    // Nothing but the hello before the refusal: no OPENED or RESUMED slipped out first.
    const types = conn.frames.map((f) => f.type);
    const hello = greeted ? [FrameType.SERVER_HELLO] : [];
    if (refused) {
      assert.equal(refusals.length, 1, `one REFUSED expected, got ${JSON.stringify(refusals)}`);
      assert.equal(refusals[0]!.code, code, `REFUSED code (${refusals[0]!.message})`);
      assert.deepEqual(types, [...hello, FrameType.REFUSED], 'frames: hello, REFUSED');
    } else {
      assert.equal(refusals.length, 0, `no REFUSED expected, got ${JSON.stringify(refusals)}`);
      assert.deepEqual(types, hello, 'frames: hello only');
    }
  }

  /** A full session through the server's front door: open, echo 4 KiB, close cleanly. */
  async function expectServerAccepts(): Promise<void> {
    const client = connect({ port });
    const payload = randomBytes(4096);
    const got = readAll(client);
    client.end(payload);
    const r = await within(5000, 'a new session to echo', got);
    assert.equal(r.bytes, payload.length, 'echoed length');
    assert.equal(r.hash, sha256(payload), 'echoed bytes');
    if (!client.destroyed) await within(5000, 'the probe to close', once(client, 'close'));
    assert.equal(connectionErrors.length, seenErrors, 'a clean session must not emit connectionError');
  }

  // ---- the healthy session, streaming both ways for the whole test ----
  const client = connect({ port });
  let clientReconnects = 0;
  let clientReceived = 0;
  client.on('reconnecting', () => clientReconnects++);
  client.on('data', (c: Buffer) => {
    clientReceived += c.length;
  });
  const clientGot = readAll(client);
  clientGot.catch(() => {}); // awaited (and asserted) at the end
  await within(5000, 'the healthy session to open', once(client, 'connect'));
  await waitFor('the server to hand over the healthy session', 5000, () => healthyServer !== undefined);
  const serverSide = healthyServer!;
  assert.equal(serverSide.sessionId, client.sessionId, 'the first session is the healthy client');
  const serverGot = readAll(serverSide);
  serverGot.catch(() => {});
  const stop = { stopped: false };
  const clientSent = streamUntil(client, 1, stop);
  const serverSent = streamUntil(serverSide, 2, stop);
  await waitFor('the healthy stream to start', 5000, () => clientReceived > 0);
  const receivedBefore = clientReceived;

  try {
    await t.test('random bytes and random frames', async () => {
      const known = Object.values(FrameType) as number[];
      const input = fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 300, size: 'max' }).map((u) => Buffer.from(u)),
        // A known frame type with a random body, maybe cut short, maybe followed by more bytes.
        fc
          .record({
            type: fc.constantFrom(...known),
            body: fc.uint8Array({ maxLength: 120, size: 'max' }),
            cut: fc.option(fc.nat(130)),
            tail: fc.uint8Array({ maxLength: 20 }),
          })
          .map(({ type, body, cut, tail }) => {
            const frame = frameWithBody(type, body);
            return Buffer.concat([cut === null ? frame : frame.subarray(0, Math.max(1, cut)), tail]);
          }),
        // A valid magic and version, then garbage: the field parsers see random bytes.
        fc
          // (At least one byte more: a bare magic and version is a valid OPEN.)
          .record({
            type: fc.constantFrom(FrameType.OPEN, FrameType.RESUME),
            rest: fc.uint8Array({ minLength: 1, maxLength: 120, size: 'max' }),
          })
          .map(({ type, rest }) => frameWithBody(type, Buffer.concat([helloBody(MAGIC, VERSION), rest]))),
      );
      await fc.assert(
        fc.asyncProperty(input, async (bytes) => {
          const conn = await dial();
          await conn.hello();
          conn.end(bytes);
          await conn.waitClosed(3000);
          assert.equal(conn.decodeError, undefined, 'the server sent an undecodable frame');
          const err = await nextConnectionError();
          assert.ok(RANDOM_CODES.has(err.code), `unexpected code ${err.code}: ${err.message}`);
          const refusals = conn.refusals();
          if (REFUSED_CODES.has(err.code)) {
            assert.equal(refusals.length, 1, `${err.code} must be sent as REFUSED`);
          }
          if (err.code === ErrorCodes.FRAME_TRUNCATED) assert.equal(refusals.length, 0, 'nobody to tell');
          for (const r of refusals) assert.equal(r.code, err.code, 'REFUSED code matches the event');
        }),
        { numRuns: 150 },
      );
      await expectServerAccepts();
    });

    await t.test('many bad connections at once', async () => {
      const conns = await Promise.all(Array.from({ length: 40 }, () => dial()));
      await Promise.all(conns.map((c) => c.hello()));
      for (const c of conns) c.end(randomBytes(1 + Math.floor(Math.random() * 200)));
      await Promise.all(conns.map((c) => c.waitClosed(3000)));
      for (let i = 0; i < conns.length; i++) {
        const err = await nextConnectionError();
        assert.ok(RANDOM_CODES.has(err.code), `unexpected code ${err.code}`);
      }
      await expectServerAccepts();
    });

    await t.test('truncated frames, then close: FRAME_TRUNCATED', async () => {
      // Each frame with the length a prefix may have and still be incomplete: a DATA frame is refused
      // (PROTOCOL, before the handshake) as soon as its ack prefix is in, so it is cut before that.
      const resume = encode.resume({
        ticket: mintTicket(POOL_SECRET, randomBytes(16)),
        proof: randomBytes(32),
        received: 0,
      });
      const frames: Array<readonly [Buffer, number]> = [
        [encode.open(), encode.open().length],
        [resume, resume.length],
        [encode.ack(5), encode.ack(5).length],
        [encode.dataHeader(0, 10, 10), FRAME_HEADER_SIZE + DATA_PREFIX_SIZE],
      ];
      for (const [frame, complete] of frames) {
        for (const cut of new Set([1, 4, FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + 1, complete - 1])) {
          const conn = await dial();
          await conn.hello();
          conn.end(frame.subarray(0, cut));
          await expectRefusal(conn, ErrorCodes.FRAME_TRUNCATED, false);
        }
      }
      await expectServerAccepts();
    });

    await t.test('a truncated frame, then silence: HANDSHAKE_TIMEOUT', async () => {
      const conn = await dial();
      await conn.hello();
      conn.send(encode.open().subarray(0, 7));
      await expectRefusal(conn, ErrorCodes.HANDSHAKE_TIMEOUT, false);
      await expectServerAccepts();
    });

    await t.test('a handshake trickled a byte at a time: HANDSHAKE_TIMEOUT all the same', async () => {
      const conn = await dial();
      await conn.hello();
      const frame = encode.open();
      let at = 0;
      let atClose = -1;
      void conn.closed.then(() => {
        atClose = at;
      });
      // All but the last byte, one per 80 ms: activity all along for 720 ms, and the frame never
      // completes. The timeout must not be pushed back by the activity.
      const trickle = setInterval(() => {
        if (at < frame.length - 1 && !conn.isClosed) conn.send(frame.subarray(at, ++at));
      }, 80);
      try {
        await expectRefusal(conn, ErrorCodes.HANDSHAKE_TIMEOUT, false);
      } finally {
        clearInterval(trickle);
      }
      assert.ok(atClose < frame.length - 1, `closed only after the trickle stopped (${atClose} bytes sent)`);
      await expectServerAccepts();
    });

    await t.test('oversized lengths: FRAME_TOO_LARGE from the header alone', async () => {
      for (const [length, type] of [
        [MAX_FRAME + 1, FrameType.OPEN],
        [MAX_FRAME + 1, FrameType.DATA],
        [0xffffffff, FrameType.RESUME],
      ] as const) {
        const conn = await dial();
        await conn.hello();
        // Only the header: the server must refuse without waiting for the body.
        conn.send(header(length, type));
        await expectRefusal(conn, ErrorCodes.FRAME_TOO_LARGE);
      }
      await expectServerAccepts();
    });

    await t.test('unknown frame types: UNKNOWN_FRAME_TYPE', async () => {
      const known = new Set<number>(Object.values(FrameType));
      for (const type of [0x00, 0x0a, 0x0f, 0x19, 0x7f, 0xff]) {
        assert.ok(!known.has(type), `0x${type.toString(16)} is a known type`);
        const conn = await dial();
        await conn.hello();
        conn.send(frameWithBody(type, Buffer.from('hello')));
        await expectRefusal(conn, ErrorCodes.UNKNOWN_FRAME_TYPE);
      }
      await expectServerAccepts();
    });

    await t.test('bad magic: BAD_MAGIC', async () => {
      for (const [type, magic] of [
        [FrameType.OPEN, 0],
        [FrameType.OPEN, MAGIC ^ 1],
        [FrameType.RESUME, 0xdeadbeef],
      ] as const) {
        const conn = await dial();
        await conn.hello();
        const body =
          type === FrameType.OPEN
            ? helloBody(magic, VERSION)
            : Buffer.concat([
                helloBody(magic, VERSION),
                encode
                  .resume({ ticket: Buffer.alloc(41), proof: Buffer.alloc(32), received: 0 })
                  .subarray(10),
              ]);
        conn.send(frameWithBody(type, body));
        await expectRefusal(conn, ErrorCodes.BAD_MAGIC);
      }
      await expectServerAccepts();
    });

    await t.test('wrong version: UNSUPPORTED_VERSION', async () => {
      for (const version of [0, VERSION + 1, 255]) {
        const conn = await dial();
        await conn.hello();
        conn.send(frameWithBody(FrameType.OPEN, helloBody(MAGIC, version)));
        await expectRefusal(conn, ErrorCodes.UNSUPPORTED_VERSION);
      }
      await expectServerAccepts();
    });

    await t.test('OPEN with trailing bytes: MALFORMED_FRAME', async () => {
      const conn = await dial();
      await conn.hello();
      conn.send(frameWithBody(FrameType.OPEN, Buffer.concat([helloBody(MAGIC, VERSION), Buffer.from([0])])));
      await expectRefusal(conn, ErrorCodes.MALFORMED_FRAME);
      await expectServerAccepts();
    });

    await t.test(
      'the first frame decides the handshake: a RESUME or a bad greeting first is refused',
      async () => {
        const s = track(await openRaw(port));
        const resume = encode.resume({
          ticket: s.ticket,
          proof: resumeProof(s.secret, Buffer.alloc(32), s.sessionId),
          received: 0,
        });
        for (const [first, code] of [
          // A RESUME proof needs the server's nonce: it cannot be the first frame.
          [resume, ErrorCodes.PROTOCOL],
          [encode.challenge(), ErrorCodes.PROTOCOL],
          [frameWithBody(FrameType.CLIENT_HELLO, helloBody(MAGIC ^ 1, VERSION)), ErrorCodes.BAD_MAGIC],
          [
            frameWithBody(FrameType.CLIENT_HELLO, helloBody(MAGIC, VERSION + 1)),
            ErrorCodes.UNSUPPORTED_VERSION,
          ],
        ] as const) {
          const conn = await dial();
          conn.send(first);
          await expectRefusal(conn, code);
        }
        // After the hello only OPEN or RESUME: a second CLIENT_HELLO, or a server's frame, is out of turn.
        for (const second of [encode.clientHello(), encode.challenge()]) {
          const conn = await dial();
          await conn.hello();
          conn.send(second);
          await expectRefusal(conn, ErrorCodes.PROTOCOL);
        }
        await expectServerAccepts();
      },
    );

    await t.test('DATA before the handshake: PROTOCOL', async () => {
      const conn = await dial();
      await conn.hello();
      const payload = Buffer.from('sneaky');
      const frame = encode.dataHeader(0, payload.length, payload.length);
      payload.copy(frame, FRAME_HEADER_SIZE + DATA_PREFIX_SIZE);
      conn.send(frame);
      await expectRefusal(conn, ErrorCodes.PROTOCOL);
      await expectServerAccepts();
    });

    await t.test('session frames before the handshake: PROTOCOL', async () => {
      for (const frame of [
        encode.ack(0),
        encode.fin(0),
        encode.abort({ code: ErrorCodes.SESSION_ABORTED, message: 'x' }),
        encode.refused({ code: ErrorCodes.PROTOCOL, message: 'x' }),
        encode.serverHello({ nonce: randomBytes(32), serverId: 'me' }),
        encode.resumed({ received: 0, epoch: 0 }),
      ]) {
        const conn = await dial();
        await conn.hello();
        conn.send(frame);
        await expectRefusal(conn, ErrorCodes.PROTOCOL);
      }
      await expectServerAccepts();
    });

    // A real session, opened by hand, whose ticket the next cases use.
    const victim: RawSession = track(await openRaw(port));
    await waitFor('the hand-opened session to be handed over', 3000, () =>
      server.sessions.has(victim.sessionId.toString('hex')),
    );

    await t.test('RESUME with a forged ticket: BAD_TICKET', async () => {
      const flipped = Buffer.from(victim.ticket);
      flipped[1]! ^= 0x01; // another session id, same MAC
      const otherPool = mintTicket(Buffer.from('some other pool secret, 32 bytes'), victim.sessionId);
      for (const ticket of [
        randomBytes(victim.ticket.length),
        flipped,
        otherPool,
        Buffer.alloc(0),
        randomBytes(200),
      ]) {
        const { conn } = track(
          await resumeRaw(port, { ...victim, ticket }, 0, (nonce) =>
            resumeProof(victim.secret, nonce, victim.sessionId),
          ),
        );
        await expectRefusal(conn, ErrorCodes.BAD_TICKET);
      }
      await expectServerAccepts();
    });

    await t.test('RESUME with a valid ticket and a wrong proof: AUTH_FAILED', async () => {
      const proofs: Array<(nonce: Buffer) => Buffer> = [
        () => randomBytes(PROOF_SIZE),
        () => Buffer.alloc(PROOF_SIZE),
        // The right construction with the wrong key, or over the wrong session id.
        (nonce) => resumeProof(randomBytes(32), nonce, victim.sessionId),
        (nonce) => resumeProof(victim.secret, nonce, randomBytes(SESSION_ID_SIZE)),
        // The secret itself is not a proof.
        () => Buffer.from(victim.secret),
      ];
      for (const proof of proofs) {
        const { conn } = track(await resumeRaw(port, victim, 0, proof));
        await expectRefusal(conn, ErrorCodes.AUTH_FAILED);
      }
      assert.ok(
        server.sessions.has(victim.sessionId.toString('hex')),
        'wrong proofs must not end the session',
      );
      await expectServerAccepts();
    });

    await t.test('a replayed proof (captured on one connection, sent on another): AUTH_FAILED', async () => {
      // The legitimate resume, on connection A.
      let captured: Buffer | undefined;
      const a = track(
        await resumeRaw(port, victim, 0, (nonce) => {
          captured = resumeProof(victim.secret, nonce, victim.sessionId);
          return captured;
        }),
      );
      await a.conn.expect(FrameType.RESUMED);
      assert.ok(captured, 'proof captured');
      // The same proof on connection B (another nonce), while A is up, and again after A is gone.
      const b = track(await resumeRaw(port, victim, 0, () => captured!));
      assert.ok(!b.hello.nonce.equals(a.hello.nonce), 'every connection gets a fresh nonce');
      await expectRefusal(b.conn, ErrorCodes.AUTH_FAILED);
      a.conn.destroy();
      const c = track(await resumeRaw(port, victim, 0, () => captured!));
      await expectRefusal(c.conn, ErrorCodes.AUTH_FAILED);
      // The session is intact: its holder resumes with a fresh proof.
      const d = track(await resumeRaw(port, victim, 0));
      await d.conn.expect(FrameType.RESUMED);
      await expectServerAccepts();
    });

    await t.test(
      'RESUME with a valid proof for a session this server never had: UNKNOWN_SESSION',
      async () => {
        const id = randomBytes(SESSION_ID_SIZE);
        const ghost = {
          sessionId: id,
          secret: deriveSessionSecret(POOL_SECRET, id),
          ticket: mintTicket(POOL_SECRET, id),
        };
        const { conn } = track(await resumeRaw(port, ghost, 0));
        await expectRefusal(conn, ErrorCodes.UNKNOWN_SESSION);
        await expectServerAccepts();
      },
    );

    await t.test('RESUME with an impossible offset (beyond what was sent): STALE_OFFSET', async () => {
      // The server has sent nothing on this session: offset 1 is already impossible. Each refusal
      // ends the session (its holder claimed the impossible), so each offset gets its own session.
      for (const received of [1, 2, 1000, Number.MAX_SAFE_INTEGER]) {
        const s = track(await openRaw(port));
        const { conn } = track(await resumeRaw(port, s, received));
        await expectRefusal(conn, ErrorCodes.STALE_OFFSET);
      }
      await expectServerAccepts();
    });

    await t.test('RESUME with a stale offset (below what was acknowledged): STALE_OFFSET', async () => {
      const s = track(await openRaw(port));
      const hex = s.sessionId.toString('hex');
      const payload = Buffer.from('0123456789');
      const frame = encode.dataHeader(0, payload.length, payload.length);
      payload.copy(frame, FRAME_HEADER_SIZE + DATA_PREFIX_SIZE);
      s.conn.send(frame);
      await waitFor('the echo', 3000, () => s.conn.dataPayload().length >= payload.length);
      assert.deepEqual(s.conn.dataPayload(), payload, 'echo');
      s.conn.send(encode.ack(payload.length));
      await waitFor(
        'the server to apply the ack',
        3000,
        () => server.sessions.get(hex)?.unacknowledged === 0,
      );
      const { conn } = track(await resumeRaw(port, s, 3));
      await expectRefusal(conn, ErrorCodes.STALE_OFFSET);
      await expectServerAccepts();
    });

    await t.test('RESUME with an offset beyond 2^53: MALFORMED_FRAME', async () => {
      const s = track(await openRaw(port));
      const conn = await dial();
      const hello = await conn.hello();
      const frame = encode.resume({
        ticket: s.ticket,
        proof: resumeProof(s.secret, hello.nonce, s.sessionId),
        received: 0,
      });
      // received is the u64 after magic, version, ticket (u16 + bytes) and proof.
      const at = FRAME_HEADER_SIZE + 5 + 2 + s.ticket.length + PROOF_SIZE;
      frame.writeUInt32BE(0xffffffff, at);
      conn.send(frame);
      await expectRefusal(conn, ErrorCodes.MALFORMED_FRAME);
      await expectServerAccepts();
    });

    for (const asked of [false, true]) {
      const what = asked ? 'asks for the hello then says nothing' : 'connects and never speaks';
      await t.test(`a client that ${what}: HANDSHAKE_TIMEOUT`, async () => {
        const started = Date.now();
        const conn = await dial();
        // The client speaks first: one that never does hears nothing from the server either.
        if (asked) await conn.hello();
        await expectRefusal(conn, ErrorCodes.HANDSHAKE_TIMEOUT, false, asked);
        const took = Date.now() - started;
        assert.ok(took >= HANDSHAKE_MS - 50, `closed after ${took} ms, before the handshake timeout`);
        assert.ok(took < HANDSHAKE_MS + 1500, `closed after ${took} ms, long after the handshake timeout`);
        await expectServerAccepts();
      });
    }

    await t.test('a client that only pings never finishes its handshake: HANDSHAKE_TIMEOUT', async () => {
      const conn = await dial();
      await conn.hello();
      const pinger = setInterval(() => {
        if (!conn.isClosed) conn.send(encode.ping(Date.now()));
      }, 20);
      try {
        await expectRefusal(conn, ErrorCodes.HANDSHAKE_TIMEOUT, false);
      } finally {
        clearInterval(pinger);
      }
      await expectServerAccepts();
    });

    await t.test('a connection that opens a session then sends garbage is refused', async () => {
      const s = track(await openRaw(port));
      s.conn.send(frameWithBody(0x7e, Buffer.from('garbage')));
      await s.conn.waitClosed(3000);
      const refusals = s.conn.refusals();
      assert.equal(refusals.length, 1, 'one REFUSED');
      assert.equal(refusals[0]!.code, ErrorCodes.UNKNOWN_FRAME_TYPE, 'REFUSED code');
      // Whether this emits 'connectionError' is the next test's business: skip any it emitted
      // (synchronously with the close, so before our side saw the close).
      seenErrors = connectionErrors.length;
      // The session itself is not lost: its holder can resume it.
      const r = track(await resumeRaw(port, s, 0));
      await r.conn.expect(FrameType.RESUMED);
      await expectServerAccepts();
    });

    await t.test('bad frames inside an open session: typed REFUSED, the session survives', async () => {
      const data = (ack: number, payload: Buffer) => {
        const frame = encode.dataHeader(ack, payload.length, payload.length);
        payload.copy(frame, FRAME_HEADER_SIZE + DATA_PREFIX_SIZE);
        return frame;
      };
      const cases: ReadonlyArray<readonly [string, Buffer, ErrorCode]> = [
        ['ACK beyond what the server sent', encode.ack(1000), ErrorCodes.STALE_OFFSET],
        ['DATA whose ack is beyond what the server sent', data(5, Buffer.from('x')), ErrorCodes.STALE_OFFSET],
        ['FIN at the wrong offset', encode.fin(7), ErrorCodes.PROTOCOL],
        ['DATA after FIN', Buffer.concat([encode.fin(0), data(0, Buffer.from('late'))]), ErrorCodes.PROTOCOL],
        ['a second OPEN', encode.open(), ErrorCodes.PROTOCOL],
        [
          'a RESUME inside the session',
          encode.resume({ ticket: Buffer.alloc(41), proof: Buffer.alloc(32), received: 0 }),
          ErrorCodes.PROTOCOL,
        ],
        ['a malformed ACK', frameWithBody(FrameType.ACK, Buffer.alloc(3)), ErrorCodes.MALFORMED_FRAME],
        ['an oversized frame', header(MAX_FRAME + 1, FrameType.DATA), ErrorCodes.FRAME_TOO_LARGE],
      ];
      for (const [what, frame, code] of cases) {
        const s = track(await openRaw(port));
        s.conn.send(frame);
        await s.conn.waitClosed(3000);
        const refusals = s.conn.refusals();
        assert.equal(refusals.length, 1, `${what}: one REFUSED, got ${JSON.stringify(refusals)}`);
        assert.equal(refusals[0]!.code, code, `${what}: REFUSED code (${refusals[0]!.message})`);
        seenErrors = connectionErrors.length; // checked by the last test below
        // The bad connection is gone; the session is not: its holder resumes it.
        const r = track(await resumeRaw(port, s, 0));
        await r.conn.expect(FrameType.RESUMED);
        r.conn.destroy();
      }
      await expectServerAccepts();
    });

    await t.test("a bad frame on an established session's connection emits 'connectionError'", async () => {
      const s = track(await openRaw(port));
      s.conn.send(frameWithBody(0x7e, Buffer.from('garbage')));
      await s.conn.waitClosed(3000);
      const err = await nextConnectionError(1000);
      assert.equal(err.code, ErrorCodes.UNKNOWN_FRAME_TYPE, 'connectionError code');
    });
  } finally {
    // ---- the healthy session: still up, never reconnected, byte-exact both ways ----
    stop.stopped = true;
    try {
      const [cSent, sSent] = await within(
        5000,
        'the healthy writers to stop',
        Promise.all([clientSent, serverSent]),
      );
      const [cGot, sGot] = await within(
        10_000,
        'the healthy session to end',
        Promise.all([clientGot, serverGot]),
      );
      await t.test('the healthy session was unaffected', () => {
        assert.ok(
          clientReceived - receivedBefore > 64 * 1024,
          `only ${clientReceived - receivedBefore} bytes streamed`,
        );
        assert.equal(clientReconnects, 0, 'the healthy session never reconnected');
        assert.deepEqual(
          sessionErrors.filter((e) => e.id === client.sessionId),
          [],
          'no error on the healthy session',
        );
        assert.equal(sGot.bytes, cSent.bytes, 'server received every byte the client sent');
        assert.equal(sGot.hash, cSent.hash, 'server received the client stream byte-exact');
        assert.equal(cGot.bytes, sSent.bytes, 'client received every byte the server sent');
        assert.equal(cGot.hash, sSent.hash, 'client received the server stream byte-exact');
      });
    } finally {
      client.destroy();
      for (const raw of raws) raw.destroy();
      await server.close();
    }
  }
});
