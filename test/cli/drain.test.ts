import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serverAdvice } from '../../src/pool/index.ts';
import { type ClientSession, connect } from '../../src/session/index.ts';
import { freePorts } from '../helpers/ports.ts';
import { pattern, readAll, within } from '../helpers/streams.ts';
import { lazarus, startLazarus } from './lazarus.ts';

const SECRET = 'drain-test-pool-secret-0123456789';
const env = { LAZARUS_SECRET: SECRET };

/** Resolves once a `lazarus serve` process logs that it listens; rejects if it exits first. */
function listening(child: ChildProcess): Promise<void> {
  let log = '';
  return new Promise((resolve, reject) => {
    child.stderr?.on('data', (c: Buffer) => {
      log += c.toString();
      if (log.includes('"msg":"listening"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}): ${log}`)));
  });
}

/** Waits until `check` holds, polling. */
async function until(check: () => boolean, what: string): Promise<void> {
  await within(
    10_000,
    what,
    (async () => {
      while (!check()) await new Promise((r) => setTimeout(r, 20));
    })(),
  );
}

describe('lazarus serve --pool and lazarus drain', () => {
  let dir: string;
  let poolFile: string;
  let ports: { a: number; b: number };
  const servers: ChildProcess[] = [];

  before(async () => {
    const [aPort, aPeer, bPort, bPeer] = await freePorts(4);
    ports = { a: aPort!, b: bPort! };
    dir = mkdtempSync(join(tmpdir(), 'lazarus-drain-'));
    poolFile = join(dir, 'pool.json');
    writeFileSync(
      poolFile,
      JSON.stringify([
        { id: 'a', host: '127.0.0.1', port: aPort, peerPort: aPeer },
        { id: 'b', host: '127.0.0.1', port: bPort, peerPort: bPeer },
      ]),
    );
    for (const id of ['a', 'b']) servers.push(startLazarus(['serve', '--pool', poolFile, '--id', id], env));
    await within(30_000, 'both members listening', Promise.all(servers.map(listening)));
  });

  after(async () => {
    await Promise.all(
      servers.map((s) => {
        if (s.exitCode !== null) return undefined;
        s.kill('SIGTERM');
        return once(s, 'exit');
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  test('drain moves every session to the other member, and the echoed streams stay byte-exact', async () => {
    const total = 1024 * 1024;
    const clients = [0, 1, 2].map((seed) => {
      const session = connect({ port: ports.a, policies: [serverAdvice()] });
      return { session, chunks: pattern(seed, total, 16 * 1024), written: 0, echoed: readAll(session), seed };
    });
    const sentHash = (seed: number) => {
      const hash = createHash('sha256');
      for (const chunk of pattern(seed, total, 16 * 1024)) hash.update(chunk);
      return hash.digest('hex');
    };
    /** Writes the stream up to `upTo` bytes, honouring backpressure; ends it once all is written. */
    const write = async (c: (typeof clients)[number], upTo: number) => {
      while (c.written < upTo) {
        const next = c.chunks.next();
        if (next.done) break;
        c.written += next.value.length;
        if (!c.session.write(next.value)) await once(c.session, 'drain');
      }
      if (c.written === total) c.session.end();
    };
    // Half of each stream goes to a, and comes back, before the drain.
    await Promise.all(clients.map((c) => write(c, total / 2)));
    await until(() => clients.every((c) => c.session.bytesRead >= total / 2), 'the first halves echoed');
    assert.deepEqual(
      clients.map((c) => c.session.serverId),
      ['a', 'a', 'a'],
    );

    const { code, stdout, stderr } = await lazarus(
      ['drain', 'a', '--pool', poolFile, '--deadline', '10s'],
      env,
    );
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /^drained a: 3 sessions moved, none left, in \d+ ms$/m);
    assert.deepEqual(
      clients.map((c) => c.session.serverId),
      ['b', 'b', 'b'],
    );

    // The rest goes to b; both halves come back intact, once each.
    await Promise.all(clients.map((c) => write(c, total)));
    for (const c of clients) {
      const echoed = await within(10_000, 'the echo to end', c.echoed);
      assert.equal(echoed.bytes, total);
      assert.equal(echoed.hash, sentHash(c.seed));
    }
  });

  test('drain exits 1 when sessions are still there at the deadline', async () => {
    const session: ClientSession = connect({ port: ports.b });
    session.on('error', () => {});
    await once(session, 'connect');
    session.write('still here');
    await until(() => session.bytesRead === 10, 'the echo');
    // The only member the session could go to is stopped: b's push gets no answer before the deadline.
    const a = servers[0]!;
    a.kill('SIGSTOP');
    try {
      const { code, stdout } = await lazarus(['drain', 'b', '--pool', poolFile, '--deadline', '500ms'], env);
      assert.equal(code, 1, stdout);
      assert.match(stdout, /^drained b: 0 sessions moved, 1 still there at the deadline, in \d+ ms$/m);
    } finally {
      a.kill('SIGCONT');
    }
    session.destroy();
  });

  test('drain with the wrong secret is refused (exit 1)', async () => {
    const { code, stderr } = await lazarus(['drain', 'a', '--pool', poolFile], {
      LAZARUS_SECRET: 'not-the-pool-secret-at-all-000',
    });
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^lazarus: /m);
  });

  test('rejects bad arguments with exit code 2', async () => {
    const noSecret = { LAZARUS_SECRET: '' };
    for (const [args, why, e] of [
      [['drain', 'a'], /--pool/, env],
      [['drain', 'a', '--pool', join(dir, 'missing.json')], /cannot read pool file/, env],
      [['drain', 'z', '--pool', poolFile], /no member "z" \(members: a, b\)/, env],
      [['drain', 'a', '--pool', poolFile, '--deadline', '5x'], /duration/, env],
      [['drain', 'a', '--pool', poolFile], /secret/, noSecret],
      [['serve', '--pool', poolFile], /--pool needs --id/, env],
      [['serve', '--pool', poolFile, '--id', 'a', '--port', '9'], /--port comes from the pool file/, env],
      [['serve', '--id', 'a'], /--id needs --pool/, env],
      [['serve', '--pool', poolFile, '--id', 'a'], /secret/, noSecret],
    ] as const) {
      const { code, stderr } = await lazarus(args, e);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, why, args.join(' '));
    }
  });
});
