import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runApp } from '../../src/dsm/launcher.ts';
import { createNetwork, unavailableReason } from '../helpers/netns.ts';

describe('dsm across hosts (network namespaces)', () => {
  test('water (locks + barriers) on 4 nodes, 3 of them in their own namespaces, equals sequential', async (t) => {
    const reason = await unavailableReason();
    if (reason) {
      t.skip(reason);
      return;
    }
    const net = await createNetwork({ hosts: 3 });
    try {
      const joined: string[] = [];
      const r = await runApp({
        app: 'water',
        params: { m: 48, steps: 2, seed: 4 },
        nodes: 4,
        host: net.bridgeAddress,
        timeoutMs: 60_000,
        wrap: (node, argv) =>
          net.hosts[node - 1]!.wrap([...argv, '--listen', `${net.hosts[node - 1]!.address}:0`]),
        onProgress: (e) => {
          if (e.kind === 'joined') joined.push(e.host);
        },
      });
      assert.ok(r.check.ok, r.check.detail);
      // Every node reached the others at its own namespace's address, not loopback.
      assert.deepEqual(joined.sort(), net.hosts.map((h) => h.address).sort());
      assert.ok(r.run.stats.every((s) => s.messagesSent > 0));
    } finally {
      await net.destroy();
    }
  });
});
