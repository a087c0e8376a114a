import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runApp } from '../../../src/dsm/launcher.ts';
import type { ProgressEvent } from '../../../src/dsm/runtime.ts';
import { createNetwork, interfaceOf, ipIn, unavailableReason } from '../../helpers/netns.ts';

describe('FT across hosts (network namespaces)', () => {
  test('a node whose link is cut is detected by silence, fenced, restarted on another host, and the result is right', async (t) => {
    const reason = await unavailableReason();
    if (reason) {
      t.skip(reason);
      process.stdout.write(`# skipped: ${reason}\n`);
      return;
    }
    // Hosts 0 and 1 run nodes 1 and 2; host 2 is spare: node 2 comes back there.
    const net = await createNetwork({ hosts: 3 });
    try {
      const cut = net.hosts[1]!;
      const inside = await interfaceOf(cut);
      const events: ProgressEvent[] = [];
      let restarted = false;
      const r = await runApp({
        app: 'lu',
        params: { n: 256, bs: 8, seed: 7 },
        nodes: 3,
        host: net.bridgeAddress,
        timeoutMs: 90_000,
        ft: { policy: { everySafePoints: 4 }, failTimeoutMs: 1500 },
        wrap: (node, argv) => {
          const host = node === 2 && argv.includes('--rejoin') ? net.hosts[2]! : net.hosts[node - 1]!;
          if (node === 2 && argv.includes('--rejoin')) restarted = true;
          return host.wrap([...argv, '--listen', `${host.address}:0`]);
        },
        onProgress: (e) => {
          events.push(e);
          // Cut node 2's only link a little into the computation: no FIN, no RST, just silence.
          if (e.kind === 'started') setTimeout(() => void ipIn(cut.name, 'link', 'set', inside, 'down'), 100);
        },
      });
      assert.ok(r.check.ok, r.check.detail);
      const lost = events.find((e) => e.kind === 'node-lost');
      assert.ok(lost && lost.kind === 'node-lost' && lost.node === 2, 'node 2 is declared lost');
      assert.match(lost.reason, /silent/, 'by the failure detector, not a closed connection');
      assert.ok(restarted, 'node 2 restarted on the spare host');
      assert.ok(
        events.some((e) => e.kind === 'recovered' && e.node === 2),
        'node 2 caught up after its restart',
      );
    } finally {
      await net.destroy();
    }
  });
});
