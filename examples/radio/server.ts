/**
 * Radio server: three pool members (a, b, c) on 127.0.0.1:7300..7302 (peers on 7400..7402), or the
 * ones named with --member. See station.ts for the service. `npx tsx examples/radio/server.ts`
 */
import { serveFromCommandLine } from '../pool.ts';
import { radioHandler } from './station.ts';

await serveFromCommandLine('radio', 7300, radioHandler());
