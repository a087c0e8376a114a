import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { membersOn, type RunningPool, startPool } from '../../examples/pool.ts';
import { radioHandler, StreamChecker, sourceHash } from '../../examples/radio/station.ts';
import { SeededRandom } from '../../src/faults/random.ts';
import type { Member } from '../../src/pool/index.ts';
import { type ClientSession, connect } from '../../src/session/index.ts';
import { freePorts } from '../helpers/ports.ts';
import { within } from '../helpers/streams.ts';

const FRAME_BYTES = 1024;
let members: Member[];
let pool: RunningPool;

before(async () => {
  members = membersOn(await freePorts(6));
  pool = await startPool(members, radioHandler({ frameBytes: FRAME_BYTES, intervalMs: 2, framesPerTick: 4 }));
});

after(async () => {
  await pool.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Plays `frames` frames of `station`, moving the listener to a random other member at random moments. */
async function listen(station: number, frames: number, seed: number) {
  const random = new SeededRandom(seed);
  const client: ClientSession = connect({ port: members[random.int(0, 2)]!.port });
  const checker = new StreamChecker(station, FRAME_BYTES);
  let checkError: Error | undefined;
  client.on('data', (chunk: Buffer) => {
    try {
      checker.push(chunk);
    } catch (err) {
      checkError = err as Error;
      client.destroy(checkError);
    }
  });
  const ended = new Promise<void>((resolve, reject) => {
    client.once('end', resolve);
    client.once('error', reject);
  });
  client.write(`PLAY ${station} ${frames}\n`);
  let migrations = 0;
  let done = false;
  ended.then(
    () => (done = true),
    () => (done = true),
  );
  const visited = new Set<string>();
  const mover = (async () => {
    while (!done) {
      await sleep(random.int(0, 12));
      const owner = client.serverId;
      if (done || owner === undefined) continue;
      const others = members.filter((m) => m.id !== owner);
      const to = random.pick(others).id;
      try {
        await client.migrate(to);
        migrations++;
        visited.add(to);
      } catch (err) {
        // Only the end of the stream may cut a migration short.
        if (!done) throw err;
      }
    }
  })();
  await within(30_000, `station ${station} to finish`, ended);
  await mover;
  assert.equal(checkError, undefined, `stream check: ${checkError?.message}`);
  const got = checker.finish();
  return { got, migrations, visited };
}

test('radio: listeners moved at random moments receive the source byte for byte', async () => {
  const frames = 3000;
  const results = await Promise.all([listen(1, frames, 11), listen(2, frames, 12), listen(3, frames, 13)]);
  for (const [i, r] of results.entries()) {
    const station = i + 1;
    assert.equal(r.got.frames, frames, `station ${station}: every frame, once`);
    assert.equal(
      r.got.hash,
      sourceHash(station, frames, FRAME_BYTES),
      `station ${station}: sha-256 of the source`,
    );
    assert.ok(r.migrations >= 100, `station ${station}: moved ${r.migrations} times, expected at least 100`);
    assert.equal(r.visited.size, 3, `station ${station}: every member served it`);
  }
});
