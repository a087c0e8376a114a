import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FaultProxy } from '../../src/faults/fault-proxy.ts';
import { StaticMembership } from '../../src/pool/membership.ts';
import { createPool } from '../../src/pool/pool.ts';
import { connect, createServer } from '../../src/session/index.ts';
import type { LazarusError } from '../../src/wire/errors.ts';
import { poolMembers, TEST_SECRET } from '../helpers/pool.ts';
import { within } from '../helpers/streams.ts';

const invalid = (fn: () => unknown, what: string) =>
  assert.throws(fn, (err: LazarusError) => err.code === 'ERR_LZ_INVALID_ARGUMENT', what);

test('a static member list is validated: ids, ports, duplicates', () => {
  const ok = { id: 'a', host: '127.0.0.1', port: 7001, peerPort: 7101 };
  assert.equal(new StaticMembership([ok]).get('a')?.port, 7001, 'a valid member is kept');
  invalid(() => new StaticMembership([{ ...ok, id: '' }]), 'an empty id is refused');
  invalid(() => new StaticMembership([{ ...ok, port: 0 }]), 'port 0 is refused');
  invalid(() => new StaticMembership([{ ...ok, peerPort: 70000 }]), 'a port above 65535 is refused');
  invalid(() => new StaticMembership([ok, ok]), 'a member listed twice is refused');
  invalid(() => createPool({ self: 'z', members: [ok], secret: TEST_SECRET }), 'self must be a member');
});

test('a pool file is read as a list or as { members }, and a bad file is a typed error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lz-pool-'));
  const members = [{ id: 'a', host: '127.0.0.1', port: 7001, peerPort: 7101 }];
  writeFileSync(join(dir, 'list.json'), JSON.stringify(members));
  writeFileSync(join(dir, 'object.json'), JSON.stringify({ members }));
  writeFileSync(join(dir, 'bad.json'), '{ not json');
  assert.deepEqual(StaticMembership.fromFile(join(dir, 'list.json')).members(), members, 'list form');
  assert.deepEqual(StaticMembership.fromFile(join(dir, 'object.json')).members(), members, 'object form');
  invalid(() => StaticMembership.fromFile(join(dir, 'bad.json')), 'unparsable file');
  invalid(() => StaticMembership.fromFile(join(dir, 'missing.json')), 'missing file');
});

test('clients learn the alternates at open and again when the pool changes, not on every resume', async () => {
  const [a, b, c] = await poolMembers(3);
  const membership = new StaticMembership([a!, b!]);
  const server = createServer(
    { pool: createPool({ self: a!.id, members: membership, secret: TEST_SECRET }) },
    (s) => s.pipe(s),
  );
  await server.listen();
  // Through a proxy, so the connection can be broken and the session resumed on a.
  const proxy = new FaultProxy({ targetPort: a!.port });
  const client = connect({ port: (await proxy.listen()).port, reconnectDelay: 5 });
  try {
    client.on('error', () => {});
    const announced: string[][] = [];
    client.on('pool', (members: { id: string }[]) => announced.push(members.map((m) => m.id)));
    await within(5000, 'open', once(client, 'connect'));
    await within(
      2000,
      'first announcement',
      new Promise((r) => (announced.length > 0 ? r(0) : client.once('pool', r))),
    );
    assert.deepEqual(announced[0], [a!.id, b!.id], 'the members at open');
    membership.set([a!, b!, c!]);
    await within(
      2000,
      'second announcement',
      new Promise((r) => (announced.length > 1 ? r(0) : client.once('pool', r))),
    );
    assert.deepEqual(
      client.members.map((m) => m.id),
      [a!.id, b!.id, c!.id],
      'the members after the change',
    );
    // A resume announces the same list again: the client takes it as no news.
    assert.equal(proxy.breakAll('reset'), 1, 'one connection broken');
    await within(5000, 'resume', once(client, 'resumed'));
    client.write('x');
    // The echo comes after the resume's POOL on the same connection.
    await within(2000, 'echo after the resume', once(client, 'data'));
    assert.equal(announced.length, 2, `pool announced ${announced.length} times`);
  } finally {
    client.destroy();
    await proxy.close();
    await server.close();
  }
});
