import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MULTIPART_SERVER_OPTIONS, multipartHandler } from '../../examples/multipart/service.ts';
import { membersOn, type RunningPool, startPool } from '../../examples/pool.ts';
import type { PartsState } from '../../src/continuation/parts.ts';
import { SeededRandom } from '../../src/faults/random.ts';
import type { Member } from '../../src/pool/index.ts';
import { type ClientSession, connect } from '../../src/session/index.ts';
import { freePorts } from '../helpers/ports.ts';
import { within } from '../helpers/streams.ts';

let members: Member[];
let pool: RunningPool;
const stats = { cuts: 0, cutsWithInFlight: 0, inconsistent: 0, restoredWithInFlight: 0 };

before(async () => {
  members = membersOn(await freePorts(6));
  const handler = multipartHandler({
    cutEvery: 8,
    onCut: ({ inFlight, outstanding }) => {
      stats.cuts++;
      if (inFlight > 0) stats.cutsWithInFlight++;
      // Every job posted before the marker is answered before the worker's marker (FIFO port), and
      // the main part handles nothing during the cut: the channel holds exactly the outstanding answers.
      if (inFlight !== outstanding) stats.inconsistent++;
    },
  });
  pool = await startPool(
    members,
    (session) => {
      if ((session.restoredState as PartsState | undefined)?.inFlight.length) stats.restoredWithInFlight++;
      handler(session);
    },
    { server: MULTIPART_SERVER_OPTIONS },
  );
});

after(async () => {
  await pool.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The requests, as the writes that carry them (cut anywhere, even inside a line). */
function writes(seed: number, requests: number): Buffer[][] {
  const random = new SeededRandom(seed);
  const bursts: Buffer[][] = [];
  for (let i = 0; i < requests; ) {
    const n = Math.min(requests - i, random.int(4, 20));
    let text = '';
    for (let j = 0; j < n; j++, i++) {
      text +=
        random.next() < 0.03
          ? `nonsense ${i}\n`
          : `${random.int(20, 400)} job ${i} ${'é'.repeat(random.int(0, 3))}\n`;
    }
    const bytes = Buffer.from(text);
    const pieces: Buffer[] = [];
    for (let at = 0; at < bytes.length; ) {
      const end = Math.min(bytes.length, at + random.int(1, 300));
      pieces.push(bytes.subarray(at, end));
      at = end;
    }
    bursts.push(pieces);
  }
  return bursts;
}

async function run(bursts: Buffer[][], requests: number, migrate: boolean) {
  const random = new SeededRandom(99);
  const client: ClientSession = connect({ port: members[0]!.port });
  const chunks: Buffer[] = [];
  let replies = 0;
  const ended = new Promise<void>((resolve, reject) => {
    client.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      for (const b of chunk) if (b === 10) replies++;
    });
    client.once('end', resolve);
    client.once('error', reject);
  });
  let done = false;
  ended.then(
    () => (done = true),
    () => (done = true),
  );
  let written = 0;
  let movesWithPending = 0;
  let moves = 0;
  let moving: Promise<void> | undefined;
  /** One migration at a time, whoever asks (the writer or the background mover). */
  const move = async () => {
    while (client.connecting) await sleep(5);
    while (moving) await moving;
    const pending = written - replies;
    const to = random.pick(members.filter((m) => m.id !== client.serverId)).id;
    moving = client.migrate(to).then(
      () => {
        moves++;
        if (pending > 0) movesWithPending++;
      },
      (err: unknown) => {
        if (!done) throw err;
      },
    );
    try {
      await moving;
    } finally {
      moving = undefined;
    }
  };
  const mover = (async () => {
    if (!migrate) return;
    while (!done) {
      // Let the new owner's worker start (~0.2 s from the sources) and answer before the next move,
      // so the session progresses.
      const seen = replies;
      while (!done && replies === seen) await sleep(5);
      await sleep(random.int(0, 40));
      if (done) break;
      await move();
    }
  })();
  let burst = 0;
  for (const pieces of bursts) {
    for (const piece of pieces) {
      client.write(piece);
      for (const b of piece) if (b === 10) written++;
    }
    // The first bursts are each followed at once by a move, while their requests are surely
    // unanswered, however loaded the machine.
    if (migrate && burst++ < 5) await move();
    await sleep(random.int(50, 110));
  }
  client.end();
  await within(40_000, 'all replies', ended);
  await mover;
  assert.equal(replies, requests, 'one reply per request');
  return { output: Buffer.concat(chunks), moves, movesWithPending };
}

test('multipart: main thread + worker moved with messages in flight both ways, output byte-exact', async () => {
  const requests = 600;
  const bursts = writes(3, requests);
  const reference = await run(bursts, requests, false);
  assert.match(reference.output.toString(), /^0 1 [0-9a-f]{64}\n/, 'the first reply is the first link');
  const cutsBefore = stats.cuts;
  const moved = await run(bursts, requests, true);
  assert.equal(stats.inconsistent, 0, 'every cut recorded exactly the outstanding answers as in flight');
  // Each move restarts the worker, which takes long on a loaded machine: fewer cuts then (30-40
  // when quiet), but some there must be.
  assert.ok(stats.cuts - cutsBefore >= 5, `${stats.cuts - cutsBefore} cuts`);
  assert.ok(stats.cutsWithInFlight > 10, `${stats.cutsWithInFlight} cuts with answers in flight`);
  assert.ok(moved.moves >= 6, `moved ${moved.moves} times, expected at least 6`);
  assert.ok(moved.movesWithPending >= 4, `${moved.movesWithPending} moves with requests unanswered`);
  assert.ok(
    stats.restoredWithInFlight >= 3,
    `${stats.restoredWithInFlight} restores re-delivered answers in flight`,
  );
  assert.ok(moved.output.equals(reference.output), 'replies byte for byte those of the run that never moved');
});
