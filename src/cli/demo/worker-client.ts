import { createHash } from 'node:crypto';
import { connect } from '../../session/index.ts';
import {
  type ClientConfig,
  type ClientState,
  DEMO_SESSION_OPTIONS,
  obeyParent,
  type StopMessage,
  toParent,
  workerConfig,
} from './messages.ts';
import { DemoStream } from './stream.ts';

/**
 * A demo client (a child process): streams its seeded data through the fault proxy, hashes what it
 * sent, what it received and what it should have received, and reports to the parent.
 */

obeyParent();
const config = workerConfig<ClientConfig>();
const stream = new DemoStream(config.seed);
const sentHash = createHash('sha256');
const expectedHash = createHash('sha256');
const receivedHash = createHash('sha256');
let sent = 0;
let received = 0;
let reconnects = 0;
let state: ClientState = 'opening';
let stopping = false;
let error: Error | undefined;

const session = connect({ ...DEMO_SESSION_OPTIONS, port: config.port, reconnectDelayMax: 250 });
session.on('connect', () => {
  state = 'open';
});
session.on('reconnecting', () => {
  state = 'reconnecting';
});
session.on('resumed', () => {
  reconnects++;
  state = stopping ? 'ending' : 'open';
});
session.on('data', (chunk: Buffer) => {
  received += chunk.length;
  receivedHash.update(chunk);
});
session.on('error', (err) => {
  error = err;
});

const status = () => ({
  index: config.index,
  sessionId: session.sessionId,
  state,
  sent,
  received,
  reconnects,
});
const ticker = setInterval(() => toParent({ kind: 'status', ...status() }), 100);

session.on('close', () => {
  clearInterval(ticker);
  state = 'closed';
  toParent(
    {
      kind: 'done',
      ...status(),
      sentHash: sentHash.digest('hex'),
      receivedHash: receivedHash.digest('hex'),
      expectedHash: expectedHash.digest('hex'),
      error: error?.message ?? (session.readableEnded ? undefined : 'the stream did not end'),
    },
    () => process.exit(0),
  );
});

function stop(): void {
  if (stopping) return;
  stopping = true;
  if (state === 'open') state = 'ending';
}
process.on('message', (m: StopMessage) => {
  if (m.kind === 'stop') {
    stop();
    pump();
  }
});
if (config.durationMs !== null) setTimeout(stop, config.durationMs).unref();

let waiting = false;
function pump(): void {
  if (session.writableEnded || waiting) return;
  while (!stopping) {
    const left = config.bytes === null ? Number.POSITIVE_INFINITY : config.bytes - sent;
    if (left <= 0) {
      stop();
      break;
    }
    const { plain, transformed } = stream.next(left);
    sentHash.update(plain);
    expectedHash.update(transformed);
    sent += plain.length;
    if (!session.write(plain)) {
      waiting = true;
      session.once('drain', () => {
        waiting = false;
        pump();
      });
      return;
    }
  }
  session.end();
}
pump();
