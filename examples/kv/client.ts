/**
 * KV client: an interactive prompt on a migratory session. Type requests (`SET k v`, `GET k`,
 * `BEGIN`, ...); `:move [member]` moves the session to another server, `:quit` ends it.
 *   npx tsx examples/kv/client.ts [--port 7500]
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { connect } from '../../src/session/index.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '7500' } } });
const session = connect({ port: Number(values.port) });
const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: 'kv> ' });

session.setEncoding('utf8');
session.on('data', (text: string) => process.stdout.write(text));
session.on('connect', () => {
  console.log(`connected to ${session.serverId}`);
  rl.prompt();
});
session.on('migrated', (e: { from?: string; to: string; ms: number }) =>
  console.log(`(moved ${e.from} -> ${e.to} in ${e.ms} ms)`),
);
session.on('error', (err) => console.error(`session failed: ${err.message}`));
session.on('close', () => rl.close());
rl.on('line', (line) => {
  if (line === ':quit') {
    session.end();
    return;
  }
  if (line.startsWith(':move')) {
    const to = line.split(' ')[1];
    session.migrate(to).catch((err: Error) => console.error(`migration failed: ${err.message}`));
  } else {
    session.write(`${line}\n`);
  }
  rl.prompt();
});
rl.on('close', () => session.end());
