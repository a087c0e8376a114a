import { describe, test } from 'node:test';
import { seededRandom } from '../../../src/dsm/app.ts';
import { ARRIVALS, assertRecovered, runFt } from './helpers.ts';

/**
 * Every app, SIGKILLed node chosen at random (seeded) at a random point of its run: the n-th barrier
 * arrival, lock grant or page served (the node kills itself there, so the failure always lands
 * mid-run). The result must equal the sequential program's (bitwise for all but water, whose sums
 * run in lock order) after the node is restarted, restores its checkpoint and re-executes.
 */

const APPS = ['sor', 'lu', 'water', 'matmul', 'radix'];

function plan(app: string, nodes: number, seed: number): { node: number; at: string } {
  const rnd = seededRandom(seed * 7919 + nodes * 31 + app.length);
  const node = 1 + Math.floor(rnd() * (nodes - 1));
  // With SMALL params water's regions fit a page each, all homed at node 0: its other nodes serve
  // nothing, so they fail at a barrier or holding a lock instead.
  const events = app === 'water' ? ['arrive', 'lock'] : ['arrive', 'serve'];
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
      for (const seed of seeds) {
        const crash = plan(app, nodes, seed);
        test(`${app}, seed ${seed}: node ${crash.node} killed at ${crash.at}`, async () => {
          const r = await runFt(app, nodes, { crash });
          assertRecovered(r, crash.node);
        });
      }
    }
  });
}
