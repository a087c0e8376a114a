import { describe } from 'node:test';
import { testOnNodeCounts } from './run-app.ts';

// 48 rows: at 8 nodes each has fewer rows than a pass has ghost rows. 100 rows of 800 B: node
// boundaries fall inside pages, and 12 half-sweeps end with a short pass.
describe('dsm app: sor (n 48)', () => testOnNodeCounts('sor', { n: 48, iters: 3 }));
describe('dsm app: sor (n 100)', () => testOnNodeCounts('sor', { n: 100, iters: 6 }));
