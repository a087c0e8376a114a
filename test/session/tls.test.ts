import assert from 'node:assert/strict';
import { once } from 'node:events';
import { before, test } from 'node:test';
import tls from 'node:tls';
import { FaultProxy } from '../../src/faults/fault-proxy.ts';
import { type ClientSession, connect, createServer, type ServerSession } from '../../src/session/index.ts';
import { makeSelfSignedCert, type TestCert } from '../helpers/certs.ts';
import { patternHash, readAll, within, writePattern } from '../helpers/streams.ts';

const MiB = 1024 * 1024;
const MAX_WRITE = 32 * 1024;
const TIMINGS = {
  reconnectDelay: 5,
  reconnectDelayMax: 50,
  keepaliveInterval: 200,
  keepaliveTimeout: 1000,
  resumeTimeout: 10_000,
} as const;

let cert: TestCert;

before(() => {
  cert = makeSelfSignedCert();
});

/** Breaks every connection the proxy accepts after [min, max] bytes, `count` times, then stops. */
function breakRepeatedly(proxy: FaultProxy, count: number, range: readonly [number, number]): () => number {
  const start = proxy.stats.breaks;
  proxy.configure({ breakAfterBytes: range, breakModes: ['reset', 'close'] });
  proxy.on('break', () => {
    if (proxy.stats.breaks - start >= count) proxy.configure({ breakAfterBytes: undefined });
  });
  return () => proxy.stats.breaks - start;
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

function closed(stream: { destroyed: boolean; once(e: 'close', f: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => (stream.destroyed ? resolve() : stream.once('close', () => resolve())));
}

test('tls.connect({ socket: session }) against a TLSSocket on the server session: byte-exact across breaks', async () => {
  const SIZE = 8 * MiB;
  const secureContext = tls.createSecureContext({ key: cert.key, cert: cert.cert });
  const serverDone: Promise<{ bytes: number; hash: string }>[] = [];
  const serverSessions: ServerSession[] = [];
  const server = createServer({ ...TIMINGS, allowHalfOpen: true }, (session) => {
    serverSessions.push(session);
    const secure = new tls.TLSSocket(session, { isServer: true, secureContext });
    secure.on('error', () => {});
    serverDone.push(
      (async () => {
        const received = readAll(secure);
        await once(secure, 'secure');
        await writePattern(secure, 2, SIZE, MAX_WRITE);
        return received;
      })(),
    );
  });
  const { port } = await server.listen();
  const proxy = new FaultProxy({ targetPort: port, seed: 21 });
  await proxy.listen();
  try {
    // Every connection breaks after 0.5-3 MiB (the TLS handshake itself may be cut), five times.
    const breaks = breakRepeatedly(proxy, 5, [512 * 1024, 3 * MiB]);
    let resumed = 0;
    const session: ClientSession = connect({ port: proxy.port, ...TIMINGS, allowHalfOpen: true });
    session.on('resumed', () => resumed++);
    const secure = tls.connect({ socket: session, ca: cert.cert, servername: 'localhost' });
    await within(10_000, 'TLS handshake over the session', once(secure, 'secureConnect'));
    assert.equal(secure.authorized, true, `peer not authorized: ${String(secure.authorizationError)}`);
    assert.equal(secure.getPeerCertificate().subject.CN, 'localhost');
    const received = readAll(secure);
    await within(30_000, 'client TLS writes', writePattern(secure, 1, SIZE, MAX_WRITE));
    const got = await within(30_000, 'client TLS reads', received);
    assert.equal(got.bytes, SIZE);
    assert.equal(got.hash, patternHash(2, SIZE, MAX_WRITE), 'server-to-client TLS stream differs');
    assert.equal(serverDone.length, 1, 'one session reached the server');
    const serverGot = await within(30_000, 'server TLS reads', serverDone[0]!);
    assert.equal(serverGot.bytes, SIZE);
    assert.equal(serverGot.hash, patternHash(1, SIZE, MAX_WRITE), 'client-to-server TLS stream differs');
    assert.ok(breaks() >= 5, `only ${breaks()} breaks`);
    assert.ok(resumed >= 5, `session resumed ${resumed} times`);
    secure.destroy();
    await within(5000, 'client session to close', closed(session));
    await within(
      5000,
      'proxied connections to close',
      waitUntil(() => proxy.size === 0),
    );
  } finally {
    await proxy.close();
    await server.close();
  }
});

test("the server's tls listener with the client's tls option: sessions open, data flows, breaks resume over new TLS connections", async () => {
  const SIZE = 8 * MiB;
  const serverDone: Promise<{ bytes: number; hash: string }>[] = [];
  const server = createServer({ ...TIMINGS, tls: { key: cert.key, cert: cert.cert } }, (session) => {
    serverDone.push(readAll(session));
    void writePattern(session, 12, SIZE, MAX_WRITE);
  });
  const { port } = await server.listen();
  const proxy = new FaultProxy({ targetPort: port, seed: 22 });
  await proxy.listen();
  try {
    const breaks = breakRepeatedly(proxy, 6, [256 * 1024, 2 * MiB]);
    let resumed = 0;
    let tlsConnections = 0;
    const session = connect({
      port: proxy.port,
      ...TIMINGS,
      tls: {
        ca: cert.cert,
        servername: 'localhost',
        // Called once per TLS connection the client makes and verifies (the open and every resume).
        checkServerIdentity: (host, peer) => {
          tlsConnections++;
          return tls.checkServerIdentity(host, peer);
        },
      },
    });
    session.on('resumed', () => resumed++);
    await within(10_000, 'TLS session open', once(session, 'connect'));
    const received = readAll(session);
    await within(30_000, 'client writes', writePattern(session, 11, SIZE, MAX_WRITE));
    const got = await within(30_000, 'client reads', received);
    assert.equal(got.bytes, SIZE);
    assert.equal(got.hash, patternHash(12, SIZE, MAX_WRITE));
    const serverGot = await within(10_000, 'server reads', serverDone[0]!);
    assert.equal(serverGot.bytes, SIZE);
    assert.equal(serverGot.hash, patternHash(11, SIZE, MAX_WRITE));
    await within(5000, 'client session to close', closed(session));
    assert.ok(breaks() >= 6, `only ${breaks()} breaks`);
    assert.ok(resumed >= 6, `session resumed ${resumed} times`);
    assert.ok(
      tlsConnections >= resumed + 1,
      `${tlsConnections} verified TLS connections for ${resumed} resumes`,
    );
    // Let the last connection close by itself: FaultProxy.close() resets it, and resetting a socket
    // it already forwarded a FIN on makes this process spin at exit (Node: end() then resetAndDestroy()).
    await within(
      5000,
      'proxied connections to close',
      waitUntil(() => proxy.size === 0),
    );
  } finally {
    await proxy.close();
    await server.close();
  }
});

test('a TLS listener refuses a plain client, and a TLS client cannot open on a plain server', async () => {
  const tlsServer = createServer({ tls: { key: cert.key, cert: cert.cert } }, () => {});
  const plainServer = createServer({}, () => {});
  const tlsPort = (await tlsServer.listen()).port;
  const plainPort = (await plainServer.listen()).port;
  try {
    const plain = connect({ port: tlsPort, handshakeTimeout: 200, connectTimeout: 300, reconnectDelay: 20 });
    const e1 = await within(5000, 'plain client error', once(plain, 'error'));
    assert.equal((e1[0] as { code?: string }).code, 'ERR_LZ_CONNECT_FAILED');
    const secure = connect({
      port: plainPort,
      handshakeTimeout: 200,
      connectTimeout: 300,
      reconnectDelay: 20,
      tls: { ca: cert.cert, servername: 'localhost' },
    });
    const e2 = await within(5000, 'TLS client error', once(secure, 'error'));
    assert.equal((e2[0] as { code?: string }).code, 'ERR_LZ_CONNECT_FAILED');
    assert.equal(tlsServer.sessions.size, 0);
    assert.equal(plainServer.sessions.size, 0);
  } finally {
    await tlsServer.close();
    await plainServer.close();
  }
});
