/**
 * Multipart server: three pool members (a, b, c) on 127.0.0.1:7900..7902 (peers on 8000..8002), or
 * the ones named with --member. See service.ts. `npx tsx examples/multipart/server.ts`
 */
import { serveFromCommandLine } from '../pool.ts';
import { MULTIPART_SERVER_OPTIONS, multipartHandler } from './service.ts';

await serveFromCommandLine('multipart', 7900, multipartHandler(), MULTIPART_SERVER_OPTIONS);
