import { describe, test } from 'node:test';
import { seededRandom } from '../../../src/dsm/app.ts';
import { ARRIVALS, assertRecovered, runFt } from './helpers.ts';

/**
 * Every app, a node chosen at random (seeded; node 0 included: with FT it is a compute node like the
 * others, the supervisor manages barriers and locks) SIGKILLs itself at a random point of its run:
 * the n-th barrier arrival, lock grant or page served (so the failure always lands mid-run). Node 0
 * is also the victim of one run per app and cluster size, whatever the draws. The result must equal
 * the sequential program's (bitwise for all but water, whose sums run in lock order) after the node
 * is restarted, restores its checkpoint and re-executes.
 */

const APPS = ['sor', 'lu', 'water', 'matmul', 'radix'];

function plan(app: string, nodes: number, seed: number, victim?: number): { node: number; at: string } {
  const rnd = seededRandom(seed * 7919 + nodes * 31 + app.length);
  const drawn = Math.floor(rnd() * nodes);
  const node = victim ?? drawn;
  // With SMALL params water's regions fit a page each, all homed at node 0: its other nodes serve
  // nothing, so they fail at a barrier or holding a lock instead.
  const events =
    app === 'water' ? (node === 0 ? ['arrive', 'lock', 'serve'] : ['arrive', 'lock']) : ['arrive', 'serve'];
  const event = events[Math.floor(rnd() * events.length)]!;
  // A node serves pages (or is granted a lock) at least about once per barrier; not every node
  // does at every barrier, so those counts stay low.
  const most = event === 'arrive' ? ARRIVALS[app]! - 1 : 3;
  const n = 1 + Math.floor(rnd() * most);
  return { node, at: `${event}:${n}` };
}

for (const nodes of [2, 4, 8]) {
  describe(`FT: random SIGKILL on ${nodes} nodes`, () => {
    const seeds = nodes === 8 ? [1] : [1, 2];
    for (const app of APPS) {
      const crashes = seeds.map((seed) => ({ seed, crash: plan(app, nodes, seed) }));
      // Node 0 once per app and size, at a random moment, unless a draw already picked it.
      if (!crashes.some((c) => c.crash.node === 0)) crashes.push({ seed: 3, crash: plan(app, nodes, 3, 0) });
      for (const { seed, crash } of crashes) {
        test(`${app}, seed ${seed}: node ${crash.node} killed at ${crash.at}`, async () => {
          const r = await runFt(app, nodes, { crash });
          assertRecovered(r, crash.node);
        });
      }
    }
  });
}
