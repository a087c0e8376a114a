import { createPool } from '../../pool/index.ts';
import { AdviceKind, createServer, type ServerSession } from '../../session/index.ts';
import {
  DEMO_SESSION_OPTIONS,
  type OverloadMessage,
  obeyParent,
  type ServerConfig,
  toParent,
  workerConfig,
} from './messages.ts';
import { ChainDigest, type DigestState, transform } from './stream.ts';

/**
 * A demo pool member (a child process). Each session returns its input transformed and, once the
 * input ends, a 32-byte ChainDigest of everything it received: that digest is how the client checks
 * the upstream direction, whichever servers the session passed through.
 */

const CORRUPT_AT = 4096;
/** While overloaded, the surplus is advised again this often: advice sent while a client is between connections is lost. */
const READVISE_MS = 500;

/** What a session checkpoints: enough to go on from here on another server. */
interface SessionState {
  readonly received: number;
  readonly digest: DigestState;
}

obeyParent();
const config = workerConfig<ServerConfig>();

/** Deterministic in (restoredState, input), as a new owner replays the logged input and compares output. */
function serve(session: ServerSession): void {
  const restored = session.restoredState as SessionState | undefined;
  let received = restored?.received ?? 0;
  const digest = new ChainDigest(restored?.digest);
  const checkpoint = () => session.checkpoint({ received, digest: digest.state } satisfies SessionState);
  // Past its log budget the session holds input until we checkpoint.
  session.on('checkpointNeeded', checkpoint);
  session.on('data', (chunk: Buffer) => {
    const out = transform(chunk);
    if (config.corrupt && received <= CORRUPT_AT && CORRUPT_AT < received + chunk.length) {
      out[CORRUPT_AT - received]! ^= 1;
    }
    received += chunk.length;
    const folded = digest.update(chunk);
    if (!session.write(out)) {
      session.pause();
      session.once('drain', () => session.resume());
    }
    if (folded) checkpoint();
  });
  session.on('end', () => session.end(digest.digest()));
}

let overload: OverloadMessage = { kind: 'overload', keep: null, target: '' };
let readvise: NodeJS.Timeout | undefined;

/** Advises every session beyond the overload limit to move. */
function shed(): void {
  const { keep, target } = overload;
  if (keep === null) return;
  for (const session of [...server.sessions.values()].slice(keep))
    session.advise(AdviceKind.OVERLOAD, target);
}

const pool = createPool({ self: config.self, members: config.members, secret: config.secret });
const server = createServer({ ...DEMO_SESSION_OPTIONS, pool }, (session) => {
  serve(session);
  // A session arriving at an overloaded server is told to go elsewhere at once.
  if (overload.keep !== null && server.sessions.size > overload.keep) {
    session.advise(AdviceKind.OVERLOAD, overload.target);
  }
});
server.on('sessionError', (err: Error, session: ServerSession) =>
  toParent({ kind: 'sessionError', sessionId: session.sessionId, message: err.message }),
);
process.on('message', (m: OverloadMessage) => {
  if (m.kind !== 'overload') return;
  overload = m;
  clearInterval(readvise);
  readvise = m.keep === null ? undefined : setInterval(shed, READVISE_MS);
  shed();
});
// The pool member's advertised port is its fault proxy's; the server itself listens behind it.
await server.listen(config.listenPort, '127.0.0.1');
toParent({ kind: 'listening' });
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
