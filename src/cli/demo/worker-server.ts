import { createHash } from 'node:crypto';
import { createServer } from '../../session/index.ts';
import { DEMO_SESSION_OPTIONS, obeyParent, type ServerConfig, toParent, workerConfig } from './messages.ts';
import { transform } from './stream.ts';

/** The demo's session server (a child process): returns each session's stream transformed. */

const CORRUPT_AT = 4096;

obeyParent();
const config = workerConfig<ServerConfig>();
const server = createServer(DEMO_SESSION_OPTIONS, (session) => {
  const hash = createHash('sha256');
  let received = 0;
  let reported = false;
  const report = (error: Error | undefined) => {
    if (reported) return;
    reported = true;
    toParent({
      kind: 'session',
      sessionId: session.sessionId,
      received,
      receivedHash: hash.digest('hex'),
      error: error?.message,
    });
  };
  session.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    const out = transform(chunk);
    if (config.corrupt && received <= CORRUPT_AT && CORRUPT_AT < received + chunk.length) {
      out[CORRUPT_AT - received]! ^= 1;
    }
    received += chunk.length;
    if (!session.write(out)) {
      session.pause();
      session.once('drain', () => session.resume());
    }
  });
  session.on('end', () => {
    report(undefined);
    session.end();
  });
  session.on('error', (err) => report(err));
  session.on('close', () => report(new Error('session closed before its end')));
});
const { port } = await server.listen(0, '127.0.0.1');
toParent({ kind: 'listening', port });
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
