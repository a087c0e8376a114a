import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { resumeProof } from '../../src/session/credentials.ts';
import { type ClientSession, connect, type ResumedEvent } from '../../src/session/index.ts';
import { decode, encode, FrameType, sessionDecoderOptions } from '../../src/session/protocol.ts';
import { DEFAULT_MAX_FRAME_SIZE } from '../../src/wire/frame.ts';
import { FrameDecoder } from '../../src/wire/frame-decoder.ts';
import { checkpointingEcho, freePorts, poolMembers, startPool, type TestPool } from '../helpers/pool.ts';
import { openRaw, RawConnection, type RawSession } from '../helpers/raw-session.ts';
import { within } from '../helpers/streams.ts';

/**
 * Exactly one owner at a time: a client racing to two alternates at once (two RESUMEs of the same
 * session, each with a valid proof over its server's nonce) must leave the session on one server,
 * never on two, and working. A stale owner is fenced by the epoch: a client that has seen epoch n
 * refuses a server offering less.
 */

const pools: TestPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

/** RESUME by hand with an owner hint (the helper's resumeRaw sends none, so a pool could not pull). */
async function resumeAt(port: number, s: RawSession, ownerHint: string): Promise<RawConnection> {
  const conn = await RawConnection.connect(port);
  const hello = await conn.hello();
  conn.send(
    encode.resume({
      ticket: s.ticket,
      proof: resumeProof(s.secret, hello.nonce, s.sessionId),
      received: 0,
      epoch: 0,
      ownerHint,
    }),
  );
  return conn;
}

function dataFrame(payload: Buffer, ack = 0): Buffer {
  return Buffer.concat([encode.dataHeader(ack, payload.length), payload]);
}

test('racing resumes at two alternates: never two owners, one at the end, and it works', async () => {
  const pool = await startPool(3, checkpointingEcho);
  pools.push(pool);
  const errors: string[] = [];
  for (const s of pool.servers) s.on('peerError', (e: Error) => errors.push(`${s.serverId}: ${e.message}`));
  for (let round = 0; round < 20; round++) {
    const s = await openRaw(pool.member('a').port);
    const hex = s.sessionId.toString('hex');
    await within(
      2000,
      'session on a',
      waitFor(() => pool.owners(hex).length === 1),
    );
    s.conn.destroy();
    // Sample ownership on every turn of the event loop while the race runs: the servers share this
    // process, so any moment with two owners is visible here.
    let most = 0;
    let sampling = true;
    const sample = () => {
      most = Math.max(most, pool.owners(hex).length);
      if (sampling) setImmediate(sample);
    };
    sample();
    // Alternate which one is asked first, and sometimes hint the wrong owner to force a redirect.
    const [first, second] = round % 2 === 0 ? ['b', 'c'] : ['c', 'b'];
    const hint = round % 5 === 4 ? (first === 'b' ? 'c' : 'b') : 'a';
    const racers = await Promise.all([
      resumeAt(pool.member(first).port, s, hint),
      resumeAt(pool.member(second).port, s, 'a'),
    ]);
    await Promise.all(racers.map((r) => r.next(4000).catch(() => undefined)));
    await new Promise((r) => setTimeout(r, 100));
    sampling = false;
    assert.ok(most <= 1, `round ${round}: at most one owner at any moment (saw ${most})`);
    const owners = pool.owners(hex);
    assert.equal(owners.length, 1, `round ${round}: exactly one owner at the end (${owners})`);
    for (const r of racers) r.destroy();
    // The session still works on its owner: resume there and get an echo back.
    const owner = owners[0]!;
    const conn = await resumeAt(pool.member(owner).port, s, owner);
    const resumed = decode.resumed(await conn.expect(FrameType.RESUMED, 4000));
    assert.ok(resumed.epoch >= 1, `round ${round}: epoch ${resumed.epoch} counts the move`);
    conn.send(dataFrame(Buffer.from(`ping ${round}`)));
    await within(
      2000,
      'echo',
      waitFor(() => conn.dataPayload().toString() === `ping ${round}`),
    );
    conn.destroy();
  }
  assert.deepEqual(errors, [], 'no peer errors');
});

test('a client that has seen epoch n refuses a server offering a lower epoch (stale owner fenced)', async () => {
  // Member c is a fake server answering every resume (early or not) with RESUMED at epoch 0 and then DATA the
  // client must never deliver.
  const resumes: number[] = [];
  const fake = net.createServer((socket) => {
    socket.on('error', () => {});
    const decoder = new FrameDecoder(
      {
        onFrame: (type, body) => {
          if (type === FrameType.RESUME) resumes.push(decode.resume(body).epoch ?? 0);
          else if (type === FrameType.EARLY_RESUME) resumes.push(decode.earlyResume(body).epoch ?? 0);
          else return;
          socket.write(encode.resumed({ received: 0, epoch: 0 }));
          socket.write(dataFrame(Buffer.from('STALE OWNER DATA')));
        },
        onStreamStart: () => {},
        onStreamChunk: () => {},
      },
      sessionDecoderOptions(DEFAULT_MAX_FRAME_SIZE),
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch {
        socket.destroy();
      }
    });
    socket.write(encode.serverHello({ nonce: Buffer.alloc(32, 7), serverId: 'c' }));
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  const fakePort = (fake.address() as AddressInfo).port;
  const [deadPeer] = await freePorts(1);
  const real = await poolMembers(2);
  const members = [...real, { id: 'c', host: '127.0.0.1', port: fakePort, peerPort: deadPeer! }];
  const pool = await startPool(3, checkpointingEcho, { members, only: ['a', 'b'] });
  pools.push(pool);
  let client: ClientSession | undefined;
  try {
    client = connect({ port: pool.member('a').port, failoverAfter: 1, reconnectDelay: 5 });
    const c = client;
    c.on('error', () => {});
    const resumedAt: string[] = [];
    c.on('resumed', (e: ResumedEvent) => resumedAt.push(e.serverId));
    let got = '';
    c.on('data', (d: Buffer) => {
      got += d.toString();
    });
    await within(5000, 'open', once(c, 'connect'));
    c.write('one;');
    await within(
      2000,
      'echo one',
      waitFor(() => got === 'one;'),
    );
    await within(5000, 'a -> b', c.migrate('b'));
    assert.equal(c.epoch, 1, 'the move to b raised the epoch');
    // To the stale "owner": it is refused, and the client goes on elsewhere (failover).
    await within(
      8000,
      'migration away from b',
      c.migrate('c').catch(() => {}),
    );
    assert.ok(resumes.length >= 1, 'the fake owner was asked');
    assert.ok(
      resumes.every((e) => e >= 1),
      `the client told the fake its epoch (${resumes})`,
    );
    assert.ok(!resumedAt.includes('c'), `never resumed at the stale owner (${resumedAt})`);
    assert.notEqual(c.serverId, 'c', 'not owned by the stale server');
    assert.ok(!got.includes('STALE'), 'no byte from the stale owner was delivered');
    c.write('two;');
    await within(
      4000,
      'echo two',
      waitFor(() => got === 'one;two;'),
    );
  } finally {
    client?.destroy();
    fake.close();
  }
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
