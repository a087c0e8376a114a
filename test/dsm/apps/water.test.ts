import { describe } from 'node:test';
import { testOnNodeCounts } from './run-app.ts';

describe('dsm app: water', () => testOnNodeCounts('water', { m: 40, steps: 2, seed: 3 }));
