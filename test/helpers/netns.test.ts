import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { claimSubnet, createNetwork, type SubnetClaim, unavailableReason } from './netns.ts';

const run = promisify(execFile);
/** A prefix no other test uses, so its routes can be filled up here. */
const PREFIX = '10.216';

/** Runs `ip -batch` with one command per line (hundreds of routes in one process). */
async function ipBatch(lines: readonly string[]): Promise<void> {
  const file = join(tmpdir(), `lz-netns-test-${process.pid}.batch`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  await run('ip', ['-force', '-batch', file]);
}

/** True when namespaces can be made here; else marks `t` skipped, saying why. */
async function namespacesHere(t: TestContext): Promise<boolean> {
  const reason = await unavailableReason();
  if (!reason) return true;
  console.log(`skipping: ${reason}`);
  t.skip(reason);
  return false;
}

describe('netns test helpers', () => {
  test('claimSubnet skips routed and claimed subnets, takes over a dead owner’s claim, and says when none is left', async (t) => {
    if (!(await namespacesHere(t))) return;
    // Every /24 but the last three is routed, as a leaked network's would be.
    const routed = Array.from({ length: 247 }, (_, x) => `route add blackhole ${PREFIX}.${x}.0/24`);
    await ipBatch(routed);
    const claims: SubnetClaim[] = [];
    try {
      // A claim left by a process that is gone: taken over.
      const dead = spawnSync('true').pid;
      const claimsDir = join(tmpdir(), 'lazarus-netns-claims');
      mkdirSync(claimsDir, { recursive: true });
      writeFileSync(join(claimsDir, `${PREFIX}.249`), String(dead));
      for (let i = 0; i < 3; i++) claims.push(await claimSubnet(PREFIX));
      assert.deepEqual(claims.map((c) => c.subnet).sort(), [
        `${PREFIX}.247`,
        `${PREFIX}.248`,
        `${PREFIX}.249`,
      ]);
      await assert.rejects(claimSubnet(PREFIX), /no free \/24 under 10\.216/);
      // A released subnet can be claimed again.
      const first = claims.shift()!;
      first.release();
      const again = await claimSubnet(PREFIX);
      claims.push(again);
      assert.equal(again.subnet, first.subnet);
    } finally {
      for (const c of claims) c.release();
      await ipBatch(routed.map((r) => r.replace('route add', 'route del'))).catch(() => {});
    }
  });

  test('a destroyed network leaves no bridge or link behind', async (t) => {
    if (!(await namespacesHere(t))) return;
    // This network's interfaces (other tests may be making theirs meanwhile): lzb<id>, lzv<id>o<i>.
    const net = await createNetwork({ hosts: 2 });
    const id = /^lzn(.+)h0$/.exec(net.hosts[0]!.name)?.[1];
    assert.ok(id, `unexpected namespace name ${net.hosts[0]!.name}`);
    const ours = async () =>
      (await run('ip', ['-o', 'link', 'show'])).stdout
        .split('\n')
        .map((l) => l.split(':')[1]?.trim().replace(/@.*$/, '') ?? '')
        .filter((name) => name === `lzb${id}` || name.startsWith(`lzv${id}o`));
    assert.deepEqual((await ours()).sort(), [`lzb${id}`, `lzv${id}o0`, `lzv${id}o1`]);
    await net.destroy();
    assert.deepEqual(await ours(), []);
  });
});
