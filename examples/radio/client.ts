/**
 * Radio listener: tunes in to a station on a pool member, asks to move to another member every
 * `--migrate-every` ms while the stream plays, and checks that what arrived is exactly the source.
 *   npx tsx examples/radio/client.ts [--port 7300] [--station 7] [--frames 5000] [--migrate-every 200]
 */
import { parseArgs } from 'node:util';
import { connect } from '../../src/session/index.ts';
import { StreamChecker, sourceHash } from './station.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7300' },
    station: { type: 'string', default: '7' },
    frames: { type: 'string', default: '5000' },
    'migrate-every': { type: 'string', default: '200' },
  },
});
const station = Number(values.station);
const frames = Number(values.frames);
const frameBytes = 1024;

const session = connect({ port: Number(values.port) });
const checker = new StreamChecker(station, frameBytes);
session.on('data', (chunk: Buffer) => checker.push(chunk));
session.on('migrated', (e: { from?: string; to: string; ms: number }) =>
  console.log(`moved ${e.from} -> ${e.to} in ${e.ms} ms at frame ${checker.frames}`),
);
session.on('error', (err) => {
  console.error(`session failed: ${err.message}`);
  process.exit(1);
});
session.write(`PLAY ${station} ${frames}\n`);
const mover = setInterval(() => {
  session.migrate().catch((err: Error) => console.error(`migration failed: ${err.message}`));
}, Number(values['migrate-every']));
session.on('end', () => {
  clearInterval(mover);
  const got = checker.finish();
  const ok = got.frames === frames && got.hash === sourceHash(station, frames, frameBytes);
  console.log(
    `${got.frames} frames, ${got.bytes} bytes, sha-256 ${got.hash.slice(0, 16)}: ${ok ? 'intact' : 'CORRUPT'}`,
  );
  process.exitCode = ok ? 0 : 1;
});
