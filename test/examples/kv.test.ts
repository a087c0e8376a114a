import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { kvHandler } from '../../examples/kv/store.ts';
import { membersOn, type RunningPool, startPool } from '../../examples/pool.ts';
import { SeededRandom } from '../../src/faults/random.ts';
import type { Member } from '../../src/pool/index.ts';
import { type ClientSession, connect } from '../../src/session/index.ts';
import { freePorts } from '../helpers/ports.ts';
import { within } from '../helpers/streams.ts';

let members: Member[];
let pool: RunningPool;

before(async () => {
  members = membersOn(await freePorts(6));
  pool = await startPool(members, kvHandler());
});

after(async () => {
  await pool.close();
});

interface Request {
  readonly line: string;
  /** A transaction is open once this request has been executed. */
  readonly inTx: boolean;
}

/** A seeded conversation: plain requests, transactions committed or aborted, a few mistakes. */
function script(seed: number, count: number): Request[] {
  const random = new SeededRandom(seed);
  const key = () => `k${random.int(0, 40)}`;
  // Multi-byte characters, so that writes split inside a UTF-8 sequence.
  const value = () => `v${random.int(0, 1e6)}${random.pick(['', 'é', '日本', '🦎', ' with spaces'])}`;
  const out: Request[] = [];
  let inTx = false;
  while (out.length < count) {
    const r = random.next();
    let line: string;
    if (r < 0.35) line = `SET ${key()} ${value()}`;
    else if (r < 0.7) line = `GET ${key()}`;
    else if (r < 0.8) line = `DEL ${key()}`;
    else if (r < 0.88) line = inTx ? 'COMMIT' : 'BEGIN';
    else if (r < 0.91) line = inTx ? 'ABORT' : 'BEGIN';
    else if (r < 0.93) line = random.pick(['BEGIN', 'COMMIT', 'ABORT', 'FROB x', 'GET', 'SET k']);
    else line = `GET ${key()}`;
    if (line === 'BEGIN') inTx = true;
    else if (line === 'COMMIT' || line === 'ABORT') inTx = false;
    out.push({ line, inTx });
  }
  return out;
}

interface Run {
  readonly replies: string[];
  readonly migrations: number;
  readonly midTransaction: number;
  readonly midLine: number;
}

/**
 * Plays the script on one session. With `migrateRate` > 0, the bytes go out in pieces cut at random
 * (inside lines, inside UTF-8 characters), and after a piece the session is sometimes moved to a
 * random other member: awaited, or fired off while the next pieces are written.
 */
async function play(requests: readonly Request[], seed: number, migrateRate: number): Promise<Run> {
  const random = new SeededRandom(seed);
  const client: ClientSession = connect({ port: members[0]!.port });
  const chunks: Buffer[] = [];
  let newlines = 0;
  const failed = new Promise<never>((_, reject) => client.once('error', reject));
  const allReplies = new Promise<void>((resolve) => {
    client.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      for (const b of chunk) if (b === 10) newlines++;
      if (newlines === requests.length) resolve();
    });
  });
  await within(5000, 'session open', Promise.race([new Promise((r) => client.once('connect', r)), failed]));
  let migrations = 0;
  let midTransaction = 0;
  let midLine = 0;
  const migrate = (inTx: boolean, inLine: boolean): Promise<void> => {
    const owner = client.serverId;
    const to = random.pick(members.filter((m) => m.id !== owner)).id;
    return client.migrate(to).then(() => {
      migrations++;
      if (inTx) midTransaction++;
      if (inLine) midLine++;
    });
  };
  let i = 0;
  while (i < requests.length) {
    const n = Math.min(requests.length - i, random.int(1, 30));
    const segment = requests.slice(i, i + n);
    i += n;
    const bytes = Buffer.from(segment.map((r) => `${r.line}\n`).join(''));
    if (migrateRate === 0) {
      client.write(bytes);
      continue;
    }
    const inTx = segment.at(-1)!.inTx;
    let at = 0;
    while (at < bytes.length) {
      const end = Math.min(bytes.length, at + random.int(1, 120));
      client.write(bytes.subarray(at, end));
      at = end;
      if (random.next() >= migrateRate) continue;
      const inLine = at < bytes.length;
      if (random.next() < 0.7) await migrate(inTx, inLine);
      else {
        // Fired off: the next writes race with the move; a later move may supersede this one.
        migrate(inTx, inLine).catch((err: Error) => {
          if (!/superseded/.test(err.message)) client.destroy(err);
        });
      }
    }
    if (random.next() < 0.1) await new Promise((r) => setTimeout(r, random.int(0, 5)));
  }
  await within(20_000, `${requests.length} replies`, Promise.race([allReplies, failed]));
  client.end();
  await within(5000, 'session close', new Promise((r) => client.once('close', r)));
  const replies = Buffer.concat(chunks).toString('utf8').split('\n');
  assert.equal(replies.pop(), '', 'replies end with a newline');
  return { replies, migrations, midTransaction, midLine };
}

test('kv: a conversation moved at random points gets the replies of a run that never moves', async () => {
  const requests = script(5, 4000);
  const reference = await play(requests, 1, 0);
  assert.equal(reference.replies.length, requests.length, 'one reply per request');
  assert.ok(
    reference.replies.some((r) => r.startsWith('OK ')),
    'the script commits transactions',
  );
  assert.ok(
    reference.replies.some((r) => r.startsWith('VALUE ')),
    'the script reads values back',
  );
  const moved = await play(requests, 2, 0.25);
  assert.ok(moved.migrations >= 120, `moved ${moved.migrations} times, expected at least 120`);
  assert.ok(moved.midTransaction >= 10, `moved ${moved.midTransaction} times inside a transaction`);
  assert.ok(moved.midLine >= 50, `moved ${moved.midLine} times with a line half written`);
  for (let k = 0; k < requests.length; k++) {
    if (moved.replies[k] !== reference.replies[k]) {
      assert.fail(
        `reply ${k} to ${JSON.stringify(requests[k]?.line)}: ${moved.replies[k]} != ${reference.replies[k]}`,
      );
    }
  }
  assert.equal(moved.replies.length, reference.replies.length, 'same number of replies');
});
