/**
 * KV server: three pool members (a, b, c) on 127.0.0.1:7500..7502 (peers on 7600..7602), or the ones
 * named with --member. See store.ts for the protocol. `npx tsx examples/kv/server.ts`
 */
import { serveFromCommandLine } from '../pool.ts';
import { kvHandler } from './store.ts';

await serveFromCommandLine('kv', 7500, kvHandler());
