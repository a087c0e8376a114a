import { describe } from 'node:test';
import { testOnNodeCounts } from './run-app.ts';

describe('dsm app: radix', () => testOnNodeCounts('radix', { n: 3000, seed: 9 }));
