import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, type ServerSession } from '../../src/session/index.ts';
import type { LazarusError } from '../../src/wire/errors.ts';
import { poolMembers, startPool, TEST_SECRET, type TestPool } from '../helpers/pool.ts';
import { within } from '../helpers/streams.ts';

/**
 * The origin of a session dies (SIGKILL) or hangs (SIGSTOP): a migration to another member cannot
 * pull the continuation and must fail with its typed error within the bounded time (pullTimeout plus
 * the handshake), without hanging anything.
 */

const FIXTURE = fileURLToPath(new URL('../fixtures/pool-origin.ts', import.meta.url));
const PULL_TIMEOUT = 800;
const RESUME_TIMEOUT = 3000;

const children: ChildProcess[] = [];
const pools: TestPool[] = [];
after(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(pools.map((p) => p.close()));
});

function echo(session: ServerSession): void {
  session.on('error', () => {});
  session.on('data', (d: Buffer) => session.write(d));
}

async function scenario(signal: 'SIGKILL' | 'SIGSTOP'): Promise<void> {
  const members = await poolMembers(3);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', FIXTURE, JSON.stringify({ self: 'a', members, secret: TEST_SECRET })],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  await within(15_000, 'origin listening', once(lines, 'line'));
  const pool = await startPool(3, echo, { members, only: ['b', 'c'], pullTimeout: PULL_TIMEOUT });
  pools.push(pool);
  // After the failed move the session goes back to its dead owner and retries until its resume
  // timeout: short here, so the whole failure is bounded.
  const client = connect({
    port: members[0]!.port,
    reconnectDelay: 50,
    reconnectDelayMax: 200,
    resumeTimeout: RESUME_TIMEOUT,
    handshakeTimeout: 2000,
  });
  const failed = new Promise<LazarusError>((resolve) => client.once('error', resolve));
  try {
    await within(10_000, 'open on the child', once(client, 'connect'));
    let got = '';
    client.on('data', (d: Buffer) => {
      got += d.toString();
    });
    client.write('before;');
    await within(
      3000,
      'echo',
      waitFor(() => got === 'before;'),
    );
    child.kill(signal);
    if (signal === 'SIGKILL') await once(child, 'exit');
    const started = Date.now();
    const err = await within(
      PULL_TIMEOUT + 2000 + 3000,
      'migration failure',
      client.migrate('b').then(
        () => undefined,
        (e: LazarusError) => e,
      ),
    );
    const ms = Date.now() - started;
    assert.ok(err, 'the migration fails');
    assert.equal(err.code, 'ERR_LZ_MIGRATION_FAILED', `typed error (${err.message})`);
    const cause = (err as { cause?: LazarusError }).cause;
    assert.ok(
      /ERR_LZ_ORIGIN_UNREACHABLE/.test(`${cause?.code} ${err.message} ${cause?.message}`),
      `the error names the unreachable origin: ${err.message} / ${cause?.code}`,
    );
    assert.ok(ms <= PULL_TIMEOUT + 2000, `failed within pullTimeout + handshake (${ms} ms)`);
    // The owner is gone for good: the session fails once its resume timeout has passed, typed.
    const clientErr = await within(RESUME_TIMEOUT + PULL_TIMEOUT + 3000, 'client error', failed);
    assert.equal(
      clientErr.code,
      'ERR_LZ_RESUME_TIMEOUT',
      `the session fails, bounded (${clientErr.message})`,
    );
    await within(2000, 'client closed', client.destroyed ? Promise.resolve([]) : once(client, 'close'));
    assert.deepEqual(pool.owners(client.sessionId!), [], 'no member adopted the session');
  } finally {
    client.destroy();
    if (signal === 'SIGSTOP') child.kill('SIGKILL');
  }
}

test('origin killed with SIGKILL: migrate() fails with ERR_LZ_MIGRATION_FAILED (origin unreachable), bounded', async () => {
  await scenario('SIGKILL');
});

test('origin frozen with SIGSTOP: the pull times out after pullTimeout, the migration fails typed', async () => {
  await scenario('SIGSTOP');
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
