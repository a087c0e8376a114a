import { describe } from 'node:test';
import { testOnNodeCounts } from './run-app.ts';

describe('dsm app: lu', () => testOnNodeCounts('lu', { n: 48, bs: 4, seed: 5 }));
