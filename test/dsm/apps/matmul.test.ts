import { describe } from 'node:test';
import { testOnNodeCounts } from './run-app.ts';

describe('dsm app: matmul', () => testOnNodeCounts('matmul', { n: 40 }));
