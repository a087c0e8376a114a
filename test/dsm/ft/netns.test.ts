import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runApp } from '../../../src/dsm/launcher.ts';
import { createNetwork, interfaceOf, ipIn, unavailableReason } from '../../helpers/netns.ts';
import { eventTrail } from './helpers.ts';

describe('FT across hosts (network namespaces)', () => {
  // Node 0 too: with FT the supervisor (this process, on the bridge) runs the managers.
  for (const victim of [2, 0]) {
    test(`node ${victim}'s link is cut: detected by silence, fenced, restarted on another host, and the result is right`, async (t) => {
      const reason = await unavailableReason();
      if (reason) {
        t.skip(reason);
        process.stdout.write(`# skipped: ${reason}\n`);
        return;
      }
      // Hosts 0, 1 and 2 run nodes 0, 1 and 2; host 3 is spare: the victim comes back there.
      const net = await createNetwork({ hosts: 4 });
      try {
        const cut = net.hosts[victim]!;
        const inside = await interfaceOf(cut);
        let restarted = false;
        // Cut the victim's only link a little into the computation: no FIN, no RST, just silence.
        const trail = eventTrail((e) => {
          if (e.kind === 'started') setTimeout(() => void ipIn(cut.name, 'link', 'set', inside, 'down'), 100);
        });
        const { events } = trail;
        const r = await runApp({
          app: 'lu',
          params: { n: 256, bs: 8, seed: 7 },
          nodes: 3,
          host: net.bridgeAddress,
          timeoutMs: 90_000,
          ft: { policy: { everySafePoints: 4 }, failTimeoutMs: 1500 },
          wrap: (node, argv) => {
            const again = node === victim && argv.includes('--rejoin');
            if (again) restarted = true;
            const host = again ? net.hosts[3]! : net.hosts[node]!;
            return host.wrap([...argv, '--listen', `${host.address}:0`]);
          },
          onProgress: trail.onProgress,
        }).catch(trail.fail(''));
        assert.ok(r.check.ok, r.check.detail);
        const lost = events.find((e) => e.kind === 'node-lost');
        assert.ok(
          lost && lost.kind === 'node-lost' && lost.node === victim,
          `node ${victim} is declared lost`,
        );
        assert.match(lost.reason, /silent/, 'by the failure detector, not a closed connection');
        assert.ok(restarted, `node ${victim} restarted on the spare host`);
        assert.ok(
          events.some((e) => e.kind === 'recovered' && e.node === victim),
          `node ${victim} caught up after its restart`,
        );
      } finally {
        await net.destroy();
      }
    });
  }
});
