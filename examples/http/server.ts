/**
 * HTTP server: three pool members (a, b, c) on 127.0.0.1:7700..7702 (peers on 7800..7802), or the
 * ones named with --member. See service.ts. `npx tsx examples/http/server.ts`
 */
import { serveFromCommandLine } from '../pool.ts';
import { createHttpService } from './service.ts';

await serveFromCommandLine('http', 7700, createHttpService().handler);
