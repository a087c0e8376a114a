import { describe } from 'node:test';
import { testOnNodeCounts } from './run-app.ts';

describe('dsm app: sor', () => testOnNodeCounts('sor', { n: 48, iters: 3 }));
