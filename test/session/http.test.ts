import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { FaultProxy } from '../../src/faults/fault-proxy.ts';
import { type ClientSession, type ConnectOptions, connect, createServer } from '../../src/session/index.ts';
import { pattern, patternHash, within } from '../helpers/streams.ts';

const MiB = 1024 * 1024;
const MAX_WRITE = 64 * 1024;

/**
 * A node:http server that never listens: each lazarus session is handed to it as its connection.
 *   GET /bytes?size=N&seed=S  -> N deterministic bytes (pattern(S, N, MAX_WRITE)), with Content-Length
 *   POST /upload              -> JSON { bytes, hash } of the request body
 */
function makeHttpServer(): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://lazarus');
    if (req.method === 'GET' && url.pathname === '/bytes') {
      const size = Number(url.searchParams.get('size'));
      const seed = Number(url.searchParams.get('seed'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      // Iterated by hand: leaving a for-of early would close the generator.
      const chunks = pattern(seed, size, MAX_WRITE);
      const pump = (): void => {
        for (let r = chunks.next(); !r.done; r = chunks.next()) {
          if (!res.write(r.value)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/upload') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ bytes, hash: hash.digest('hex') }));
      });
      return;
    }
    res.writeHead(404).end();
  });
}

interface Fetched {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  hash: string;
  body: Buffer | undefined;
}

/** Sends one request (streaming `body` with backpressure) and reads the whole response, hashing it; small bodies are kept too. */
function fetch(options: http.RequestOptions, body?: Iterable<Buffer>, onProgress?: (n: number) => void) {
  return new Promise<Fetched>((resolve, reject) => {
    const req = http.request(options, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      const keep: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
        if (bytes <= 64 * 1024) keep.push(chunk);
        onProgress?.(bytes);
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes,
          hash: hash.digest('hex'),
          body: bytes <= 64 * 1024 ? Buffer.concat(keep) : undefined,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (!body) {
      req.end();
      return;
    }
    const chunks = body[Symbol.iterator]();
    const pump = (): void => {
      for (let r = chunks.next(); !r.done; r = chunks.next()) {
        if (!req.write(r.value)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

interface Setup {
  proxy: FaultProxy;
  httpServer: http.Server;
  sessionServer: ReturnType<typeof createServer>;
  handed: number;
}

const setup = {} as Setup;
const TIMINGS: Partial<ConnectOptions> = {
  reconnectDelay: 5,
  reconnectDelayMax: 50,
  keepaliveInterval: 200,
  keepaliveTimeout: 1000,
  resumeTimeout: 10_000,
};

before(async () => {
  setup.httpServer = makeHttpServer();
  setup.handed = 0;
  setup.sessionServer = createServer(
    { resumeTimeout: 10_000, keepaliveInterval: 200, keepaliveTimeout: 1000 },
    (session) => {
      setup.handed++;
      setup.httpServer.emit('connection', session);
    },
  );
  const { port } = await setup.sessionServer.listen();
  setup.proxy = new FaultProxy({ targetPort: port, seed: 3 });
  await setup.proxy.listen();
});

after(async () => {
  // Closing the proxy resets its connections; one it already forwarded a FIN on would make this
  // process spin at exit (Node: end() then resetAndDestroy()), so let them close first.
  await within(
    5000,
    'proxied connections to close',
    (async () => {
      while (setup.proxy.size > 0) await new Promise((r) => setTimeout(r, 10));
    })(),
  );
  await setup.proxy.close();
  await setup.sessionServer.close();
  setup.httpServer.closeAllConnections();
});

/** A client session through the fault proxy, recording its reconnects and resumes. */
function session(events: { reconnecting: number; resumed: number }): ClientSession {
  const s = connect({ port: setup.proxy.port, ...TIMINGS });
  s.on('reconnecting', () => events.reconnecting++);
  s.on('resumed', () => events.resumed++);
  return s;
}

async function waitForNoSessions(): Promise<void> {
  await within(
    5000,
    'server sessions to end',
    (async () => {
      while (setup.sessionServer.sessions.size > 0) await new Promise((r) => setTimeout(r, 10));
    })(),
  );
}

test('GET over a session: 8 MiB response byte-exact', async () => {
  const events = { reconnecting: 0, resumed: 0 };
  let client: ClientSession | undefined;
  const res = await within(
    20_000,
    'response',
    fetch({
      path: `/bytes?size=${8 * MiB}&seed=1`,
      createConnection: () => {
        client = session(events);
        return client;
      },
    }),
  );
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-length'], String(8 * MiB));
  assert.equal(res.bytes, 8 * MiB);
  assert.equal(res.hash, patternHash(1, 8 * MiB, MAX_WRITE));
  assert.equal(events.reconnecting, 0);
  // 'Connection: close' (no agent): both ends finish the session and the server forgets it.
  assert.ok(client, 'createConnection was called');
  await within(
    5000,
    'client session close',
    new Promise((r) => (client?.destroyed ? r(0) : client?.once('close', r))),
  );
  await waitForNoSessions();
});

test('GET: the connection is reset when half the body has arrived; the response completes intact', async () => {
  const events = { reconnecting: 0, resumed: 0 };
  const size = 8 * MiB;
  let broken = false;
  let brokenConnections = 0;
  const res = await within(
    30_000,
    'response across a reset',
    fetch({ path: `/bytes?size=${size}&seed=2`, createConnection: () => session(events) }, undefined, (n) => {
      if (!broken && n >= size / 2) {
        broken = true;
        brokenConnections = setup.proxy.breakAll('reset');
      }
    }),
  );
  assert.ok(broken, 'the break happened mid-response');
  assert.equal(brokenConnections, 1, 'one proxied connection was reset');
  assert.equal(res.status, 200);
  assert.equal(res.bytes, size);
  assert.equal(res.hash, patternHash(2, size, MAX_WRITE));
  assert.ok(events.reconnecting >= 1, `client saw ${events.reconnecting} 'reconnecting'`);
  assert.ok(events.resumed >= 1, `client saw ${events.resumed} 'resumed'`);
  await waitForNoSessions();
});

test('GET: several breaks at byte budgets in the middle of the response', async () => {
  const events = { reconnecting: 0, resumed: 0 };
  const size = 8 * MiB;
  const breaksBefore = setup.proxy.stats.breaks;
  // Every proxied connection (the first one, the resumes) breaks after 1-3 MiB, until 3 breaks happened.
  setup.proxy.configure({ breakAfterBytes: [1 * MiB, 3 * MiB], breakModes: ['reset', 'close'] });
  const onBreak = () => {
    if (setup.proxy.stats.breaks - breaksBefore >= 3) setup.proxy.configure({ breakAfterBytes: undefined });
  };
  setup.proxy.on('break', onBreak);
  try {
    const res = await within(
      30_000,
      'response across breaks',
      fetch({ path: `/bytes?size=${size}&seed=3`, createConnection: () => session(events) }),
    );
    assert.equal(res.bytes, size);
    assert.equal(res.hash, patternHash(3, size, MAX_WRITE));
    const breaks = setup.proxy.stats.breaks - breaksBefore;
    assert.ok(breaks >= 3, `${breaks} breaks`);
    assert.ok(events.resumed >= 3, `client resumed ${events.resumed} times`);
  } finally {
    setup.proxy.off('break', onBreak);
    setup.proxy.configure({ breakAfterBytes: undefined });
  }
  await waitForNoSessions();
});

test('POST: 8 MiB upload broken mid-upload arrives intact', async () => {
  const events = { reconnecting: 0, resumed: 0 };
  const size = 8 * MiB;
  const breaksBefore = setup.proxy.stats.breaks;
  setup.proxy.configure({ breakAfterBytes: [3 * MiB, 3 * MiB], breakModes: ['reset'] });
  const onBreak = () => setup.proxy.configure({ breakAfterBytes: undefined });
  setup.proxy.once('break', onBreak);
  try {
    const res = await within(
      30_000,
      'upload response',
      fetch(
        {
          method: 'POST',
          path: '/upload',
          headers: { 'content-type': 'application/octet-stream', 'content-length': size },
          createConnection: () => session(events),
        },
        pattern(4, size, MAX_WRITE),
      ),
    );
    assert.equal(res.status, 200);
    const got = JSON.parse(res.body?.toString() ?? '{}') as { bytes: number; hash: string };
    assert.deepEqual(got, { bytes: size, hash: patternHash(4, size, MAX_WRITE) });
    assert.equal(setup.proxy.stats.breaks - breaksBefore, 1, 'one break during the upload');
    assert.ok(events.reconnecting >= 1, `client saw ${events.reconnecting} 'reconnecting'`);
    assert.ok(events.resumed >= 1, `client saw ${events.resumed} 'resumed'`);
  } finally {
    setup.proxy.off('break', onBreak);
    setup.proxy.configure({ breakAfterBytes: undefined });
  }
  await waitForNoSessions();
});

test('keep-alive http.Agent: several requests share one session, across a break', async () => {
  const events = { reconnecting: 0, resumed: 0 };
  const handedBefore = setup.handed;
  let created = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  // The agent's own factory: every socket it wants is a lazarus session.
  (agent as unknown as { createConnection: () => ClientSession }).createConnection = () => {
    created++;
    return session(events);
  };
  try {
    const sizes = [1, 1000, 300 * 1024, 2 * MiB, 17, 4 * MiB];
    for (const [i, size] of sizes.entries()) {
      const seed = 100 + i;
      let broken = false;
      const res = await within(
        20_000,
        `keep-alive response ${i}`,
        fetch({ agent, path: `/bytes?size=${size}&seed=${seed}` }, undefined, (n) => {
          // Break the (shared) connection in the middle of the 2 MiB response.
          if (size === 2 * MiB && !broken && n >= MiB) {
            broken = true;
            setup.proxy.breakAll('reset');
          }
        }),
      );
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection, 'keep-alive');
      assert.equal(res.bytes, size, `response ${i} length`);
      assert.equal(res.hash, patternHash(seed, size, MAX_WRITE), `response ${i} content`);
    }
    // Interleave an upload on the same session.
    const up = await within(
      20_000,
      'keep-alive upload',
      fetch(
        {
          agent,
          method: 'POST',
          path: '/upload',
          headers: { 'content-length': MiB },
        },
        pattern(200, MiB, MAX_WRITE),
      ),
    );
    assert.deepEqual(JSON.parse(up.body?.toString() ?? '{}'), {
      bytes: MiB,
      hash: patternHash(200, MiB, MAX_WRITE),
    });
    assert.equal(created, 1, 'the agent opened one session for all requests');
    assert.equal(setup.handed - handedBefore, 1, 'the server saw one session');
    assert.ok(events.resumed >= 1, 'the shared session resumed after the break');
  } finally {
    agent.destroy();
  }
  await waitForNoSessions();
});
