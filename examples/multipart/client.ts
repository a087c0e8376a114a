/**
 * Multipart client: sends `--requests` jobs in bursts, moves the session to another server every
 * `--migrate-every` ms, and prints a digest of all the replies (the same whatever the moves).
 *   npx tsx examples/multipart/client.ts [--port 7900] [--requests 500] [--migrate-every 500]
 * A new owner starts a worker thread for the session (~0.2 s from the TypeScript sources): moving
 * much more often than that would leave the session no time to progress.
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { connect } from '../../src/session/index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7900' },
    requests: { type: 'string', default: '500' },
    'migrate-every': { type: 'string', default: '500' },
  },
});
const requests = Number(values.requests);
const session = connect({ port: Number(values.port) });
const hash = createHash('sha256');
let lines = 0;
session.on('data', (chunk: Buffer) => {
  hash.update(chunk);
  for (const b of chunk) if (b === 10) lines++;
});
session.on('migrated', (e: { from?: string; to: string; ms: number }) =>
  console.log(`moved ${e.from} -> ${e.to} in ${e.ms} ms with ${requests - lines} replies pending`),
);
session.on('error', (err) => {
  console.error(`session failed: ${err.message}`);
  process.exit(1);
});
const mover = setInterval(() => {
  session.migrate().catch((err: Error) => console.error(`migration failed: ${err.message}`));
}, Number(values['migrate-every']));
for (let i = 0; i < requests; i += 20) {
  let burst = '';
  for (let j = i; j < Math.min(requests, i + 20); j++) burst += `${1000 + (j % 7) * 500} job ${j}\n`;
  session.write(burst);
  await new Promise((r) => setTimeout(r, 20));
}
session.end();
session.on('end', () => {
  clearInterval(mover);
  console.log(`${lines} replies, sha-256 ${hash.digest('hex')}`);
});
