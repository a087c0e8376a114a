import { createHash } from 'node:crypto';
import { rttDegraded, serverAdvice, stall, throughputDegraded } from '../../pool/index.ts';
import { connect, type MigratedEvent, type ResumedEvent } from '../../session/index.ts';
import {
  type ClientStatus,
  DEMO_SESSION_OPTIONS,
  type FleetConfig,
  obeyParent,
  type StopMessage,
  toParent,
  workerConfig,
} from './messages.ts';
import { ChainDigest, DemoStream } from './stream.ts';

/**
 * The demo's clients (one child process, one session each): each streams its seeded data at a steady
 * rate to the pool, lets its migration policies move it, hashes what it sent and what came back, and
 * reports to the parent. One process rather than a dozen keeps a two-core machine responsive, so the
 * round-trip times the policies watch measure the paths, not the scheduler.
 */

/** How often a client tops up its sending credit. */
const PACE_MS = 50;
const DIGEST_BYTES = 32;

interface DemoClient {
  status(): ClientStatus;
  stop(): void;
}

obeyParent();
const config = workerConfig<FleetConfig>();

function startClient(index: number): DemoClient {
  const stream = new DemoStream(config.seed * 1000 + index);
  const sentDigest = new ChainDigest();
  const expectedHash = createHash('sha256');
  const receivedHash = createHash('sha256');
  const trailer: Buffer[] = [];
  let sent = 0;
  let received = 0;
  let migrations = 0;
  let reconnects = 0;
  let server: string | undefined;
  let stopping = false;
  let waiting = false;
  let credit = 0;
  let error: Error | undefined;

  const session = connect({
    ...DEMO_SESSION_OPTIONS,
    port: config.ports[index % config.ports.length]!,
    reconnectDelayMax: 250,
    policies: [
      serverAdvice(),
      stall(),
      // Loopback round trips jitter with load; the degraded path adds 400 ms, far beyond 5x even a
      // busy machine's baseline, while a second of sustained 5x (the default hysteresis) is rare noise.
      rttDegraded({ factor: 5 }),
      throughputDegraded(),
    ],
  });
  session.on('connect', () => {
    server = session.serverId;
  });
  session.on('resumed', (e: ResumedEvent) => {
    if (e.serverId === server) reconnects++;
    server = e.serverId;
  });
  session.on('migrated', (e: MigratedEvent) => {
    migrations++;
    toParent({ kind: 'migration', index, from: e.from, to: e.to, reason: e.reason, ms: e.ms });
  });
  session.on('data', (chunk: Buffer) => {
    // Everything up to what we sent is the transformed stream; what comes after is the server's digest.
    const body = Math.max(0, Math.min(chunk.length, sent - received));
    receivedHash.update(chunk.subarray(0, body));
    received += body;
    if (body < chunk.length) trailer.push(Buffer.from(chunk.subarray(body)));
  });
  session.on('error', (err) => {
    error = err;
  });

  const status = (): ClientStatus => ({
    index,
    sessionId: session.sessionId,
    serverId: session.serverId,
    state: session.status === 'open' && stopping ? 'ending' : session.status,
    sent,
    received,
    migrations,
    reconnects,
  });

  const stop = () => {
    if (stopping) return;
    stopping = true;
    clearInterval(pacer);
    session.end();
  };

  /** Sends this tick's share of the rate; a client held back by flow control does not burst afterwards. */
  const pump = () => {
    if (waiting) return;
    credit = Math.min(credit + (config.rate * PACE_MS) / 1000, config.rate / 4);
    while (credit >= 1) {
      const { plain, transformed } = stream.next(Math.floor(credit));
      sentDigest.update(plain);
      expectedHash.update(transformed);
      sent += plain.length;
      credit -= plain.length;
      if (!session.write(plain)) {
        waiting = true;
        session.once('drain', () => {
          waiting = false;
        });
        return;
      }
    }
  };
  const pacer = setInterval(pump, PACE_MS);

  session.on('close', () => {
    clearInterval(pacer);
    const digest = Buffer.concat(trailer);
    toParent(
      {
        kind: 'done',
        ...status(),
        state: 'closed',
        sentDigest: sentDigest.digest().toString('hex'),
        serverDigest: digest.length === DIGEST_BYTES ? digest.toString('hex') : undefined,
        receivedHash: receivedHash.digest('hex'),
        expectedHash: expectedHash.digest('hex'),
        error: error?.message ?? (session.readableEnded ? undefined : 'the stream did not end'),
      },
      onDone,
    );
  });
  return { status, stop };
}

const clients = Array.from({ length: config.clients }, (_, i) => startClient(i));
const reporter = setInterval(
  () => toParent({ kind: 'status', sessions: clients.map((c) => c.status()) }),
  200,
);
let open = clients.length;
function onDone(): void {
  if (--open > 0) return;
  clearInterval(reporter);
  process.exit(0);
}
process.on('message', (m: StopMessage) => {
  if (m.kind === 'stop') for (const client of clients) client.stop();
});
