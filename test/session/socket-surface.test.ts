import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FaultProxy } from '../../src/faults/fault-proxy.ts';
import {
  type ClientSession,
  type ConnectOptions,
  connect,
  createServer,
  type ServerOptions,
  type ServerSession,
  type SessionServer,
} from '../../src/session/index.ts';
import { patternHash, readAll, within, writePattern } from '../helpers/streams.ts';

type Coded = Error & { code?: string };

const FAST = { reconnectDelay: 5, reconnectDelayMax: 40, keepaliveInterval: 100, keepaliveTimeout: 600 };

/** A server whose sessions are queued for the test to pick up, in order. */
async function startServer(options: ServerOptions = {}) {
  const queue: ServerSession[] = [];
  const waiters: Array<(s: ServerSession) => void> = [];
  const server = createServer({ ...FAST, ...options }, (session) => {
    const w = waiters.shift();
    if (w) w(session);
    else queue.push(session);
  });
  const { port } = await server.listen();
  const next = (): Promise<ServerSession> => {
    const s = queue.shift();
    return within(5000, 'a server session', s ? Promise.resolve(s) : new Promise((r) => waiters.push(r)));
  };
  return { server, port, next };
}

function open(options: ConnectOptions): Promise<ClientSession> {
  const client = connect(options);
  return within(5000, 'session open', once(client, 'connect')).then(() => client);
}

function errorOf(stream: NodeJS.EventEmitter, what: string, ms = 5000): Promise<Coded> {
  return within(ms, what, once(stream, 'error')).then(([err]) => err as Coded);
}

function closed(stream: { destroyed: boolean; once(e: 'close', f: () => void): unknown }): Promise<void> {
  return within(
    5000,
    'close',
    new Promise<void>((resolve) => (stream.destroyed ? resolve() : stream.once('close', () => resolve()))),
  );
}

async function waitUntil(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  await within(
    ms,
    what,
    (async () => {
      while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
    })(),
  );
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function stop(server: SessionServer, ...clients: ClientSession[]): Promise<void> {
  for (const c of clients) {
    c.on('error', () => {});
    c.destroy();
  }
  await server.close();
}

test('setNoDelay / setKeepAlive chain and keep data flowing; setTimeout emits timeout when idle', async () => {
  const { server, port, next } = await startServer();
  const client = await open({ port, ...FAST });
  const peer = await next();
  try {
    assert.equal(client.setNoDelay(true), client);
    assert.equal(client.setNoDelay(false), client);
    assert.equal(client.setKeepAlive(true, 1000), client);
    assert.equal(peer.setNoDelay(), peer);
    assert.equal(peer.setKeepAlive(true), peer);
    client.write('ping');
    const [data] = await within(2000, 'data after the socket options', once(peer, 'data'));
    assert.equal(String(data), 'ping');

    // 'timeout' after the idle period, like net.Socket; the session stays usable.
    let fired = 0;
    const t0 = Date.now();
    client.setTimeout(80, () => fired++);
    await within(2000, "'timeout'", once(client, 'timeout'));
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 70, `timeout fired after ${elapsed} ms`);
    assert.equal(fired, 1, 'the setTimeout callback ran');
    assert.equal(client.destroyed, false, "'timeout' does not destroy the session");
    // Activity pushes it back: data every 30 ms for 200 ms means no further 'timeout' meanwhile.
    client.setTimeout(100);
    let extra = 0;
    client.on('timeout', () => extra++);
    for (let i = 0; i < 7; i++) {
      peer.write('x');
      await new Promise((r) => setTimeout(r, 30));
    }
    assert.equal(extra, 0, "no 'timeout' while data flows");
    // 0 disables it.
    client.setTimeout(0);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(extra, 0, "no 'timeout' after setTimeout(0)");
    client.write('still alive');
    const [more] = await within(2000, 'data after timeout', once(peer, 'data'));
    assert.equal(String(more), 'still alive');
  } finally {
    await stop(server, client);
  }
});

test('ref/unref: an unrefed open session lets the process exit; a refed one keeps it alive', async () => {
  const { server, port } = await startServer();
  const script = fileURLToPath(new URL('../fixtures/unref-client.ts', import.meta.url));
  const run = (mode: string) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, String(port), mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exited, output: () => out };
  };
  try {
    const unrefed = run('unref');
    const code = await within(15_000, 'the unrefed client process to exit', unrefed.exited);
    assert.equal(code, 0, `child output: ${unrefed.output()}`);
    assert.match(unrefed.output(), /open/, 'the child opened its session before exiting');

    const refed = run('ref');
    await waitUntil(() => refed.output().includes('open'), 'the refed child to open', 15_000);
    const stillRunning = await Promise.race([
      refed.exited.then(() => false),
      new Promise((r) => setTimeout(() => r(true), 700)),
    ]);
    refed.child.kill('SIGKILL');
    await refed.exited;
    assert.equal(stillRunning, true, 'a refed session keeps the process alive');
  } finally {
    await server.close();
  }
});

test('addresses, bytesRead/bytesWritten (payload only, exact across a break), readyState/connecting/pending', async () => {
  const { server, port, next } = await startServer({ allowHalfOpen: true });
  const proxy = new FaultProxy({ targetPort: port, seed: 5 });
  await proxy.listen();
  const client = connect({ port: proxy.port, ...FAST, allowHalfOpen: true });
  assert.equal(client.connecting, true);
  assert.equal(client.pending, true);
  assert.equal(client.readyState, 'opening');
  assert.deepEqual(client.address(), {});
  try {
    await within(5000, 'connect', once(client, 'connect'));
    const peer = await next();
    assert.equal(client.connecting, false);
    assert.equal(client.pending, false);
    assert.equal(client.readyState, 'open');
    assert.equal(client.remoteAddress, '127.0.0.1');
    assert.equal(client.remotePort, proxy.port);
    assert.equal(client.remoteFamily, 'IPv4');
    assert.equal(client.localAddress, '127.0.0.1');
    assert.equal(typeof client.localPort, 'number');
    assert.equal((client.address() as AddressInfo).port, client.localPort);
    assert.equal(peer.localPort, port, 'server side: local port is the listener');
    assert.equal(peer.remoteAddress, '127.0.0.1');
    assert.equal(typeof peer.remotePort, 'number');

    // bytes: 150 KB up, 200 KB down, a reset in between; counts are payload bytes, each counted once.
    const up = 150_000;
    const down = 200_000;
    const peerGot = readAll(peer);
    const clientGot = readAll(client);
    await writePattern(client, 1, up, 10_000);
    // writePattern ended the stream: the client is now read-only.
    assert.equal(client.readyState, 'readOnly');
    const firstLocalPort = client.localPort;
    let reconnecting = false;
    client.once('reconnecting', () => {
      reconnecting = true;
      assert.equal(client.pending, true, 'pending while reconnecting');
      assert.equal(client.connecting, false, 'not connecting: the session was open');
    });
    proxy.breakAll('reset');
    await within(5000, 'resume', once(client, 'resumed'));
    assert.equal(reconnecting, true);
    assert.equal(client.pending, false);
    assert.notEqual(client.localPort, firstLocalPort, 'addresses follow the new connection');
    await writePattern(peer, 2, down, 10_000);
    const [pg, cg] = await within(5000, 'both directions', Promise.all([peerGot, clientGot]));
    assert.equal(pg.bytes, up);
    assert.equal(pg.hash, patternHash(1, up, 10_000));
    assert.equal(cg.hash, patternHash(2, down, 10_000));
    assert.equal(client.bytesWritten, up);
    assert.equal(peer.bytesRead, up);
    assert.equal(peer.bytesWritten, down);
    assert.equal(client.bytesRead, down);
    await closed(client);
    assert.equal(client.readyState, 'closed');
    assert.equal(client.status, 'closed');
    await waitUntil(() => server.sessions.size === 0, 'server to forget the session');
    // FaultProxy.close() resets its connections; resetting one whose FIN it already forwarded hangs
    // this process at exit (Node: end() then resetAndDestroy() -> EINVAL, handle never closed).
    await waitUntil(() => proxy.size === 0, 'proxied connections to close');
  } finally {
    await proxy.close();
    await stop(server, client);
  }
});

test('AbortSignal: abort gives the client ERR_LZ_ABORTED and the server session ERR_LZ_SESSION_ABORTED', async () => {
  const { server, port, next } = await startServer();
  const serverErrors: Coded[] = [];
  server.on('sessionError', (err: Coded) => serverErrors.push(err));
  try {
    const ac = new AbortController();
    const client = await open({ port, ...FAST, signal: ac.signal });
    const peer = await next();
    const peerError = errorOf(peer, 'server session error');
    const clientError = errorOf(client, 'client error');
    ac.abort(new Error('user gave up'));
    const err = await clientError;
    assert.equal(err.code, 'ERR_LZ_ABORTED');
    assert.equal((err.cause as Error | undefined)?.message, 'user gave up', 'the abort reason is the cause');
    assert.equal((await peerError).code, 'ERR_LZ_SESSION_ABORTED');
    await closed(client);
    await waitUntil(() => server.sessions.size === 0, 'server to drop the session');
    assert.deepEqual(
      serverErrors.map((e) => e.code),
      ['ERR_LZ_SESSION_ABORTED'],
    );

    // Already aborted: fails at once, no session is created.
    const pre = connect({ port, signal: AbortSignal.abort() });
    assert.equal((await errorOf(pre, 'pre-aborted error')).code, 'ERR_LZ_ABORTED');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.sessions.size, 0);
  } finally {
    await server.close();
  }
});

test('destroy(err) on either side gives the other ERR_LZ_SESSION_ABORTED', async () => {
  const { server, port, next } = await startServer();
  try {
    const c1 = await open({ port, ...FAST });
    const p1 = await next();
    const p1Error = errorOf(p1, 'server session error');
    c1.on('error', () => {});
    c1.destroy(new Error('client broke down'));
    const e1 = await p1Error;
    assert.equal(e1.code, 'ERR_LZ_SESSION_ABORTED');
    assert.match(e1.message, /client broke down/);

    const c2 = await open({ port, ...FAST });
    const p2 = await next();
    const c2Error = errorOf(c2, 'client error');
    p2.on('error', () => {});
    p2.destroy(new Error('handler crashed'));
    const e2 = await c2Error;
    assert.equal(e2.code, 'ERR_LZ_SESSION_ABORTED');
    assert.match(e2.message, /handler crashed/);
    await closed(c2);
    await waitUntil(() => server.sessions.size === 0, 'server sessions to empty');
  } finally {
    await server.close();
  }
});

test('end() both ways with allowHalfOpen: end arrives after all data, the other side can still write', async () => {
  const { server, port, next } = await startServer({ allowHalfOpen: true });
  const client = await open({ port, ...FAST, allowHalfOpen: true });
  try {
    const peer = await next();
    const UP = 2 * 1024 * 1024;
    const DOWN = 3 * 1024 * 1024;
    const peerGot = readAll(peer);
    await writePattern(client, 31, UP, 50_000);
    const got = await within(10_000, "server's end", peerGot);
    assert.equal(got.bytes, UP, 'server got all data before end');
    assert.equal(got.hash, patternHash(31, UP, 50_000));
    // Half-open: the client has ended, the server still writes, then ends.
    assert.equal(peer.writable, true, 'server side still writable after the peer ended');
    assert.equal(client.readyState, 'readOnly');
    const clientGot = readAll(client);
    await writePattern(peer, 32, DOWN, 50_000);
    const back = await within(10_000, "client's end", clientGot);
    assert.equal(back.bytes, DOWN, 'client got all data before end');
    assert.equal(back.hash, patternHash(32, DOWN, 50_000));
    await closed(client);
    await closed(peer);
    await waitUntil(() => server.sessions.size === 0, 'server sessions to empty');
  } finally {
    await stop(server, client);
  }
});

test('idleTimeout destroys the session with ERR_LZ_IDLE_TIMEOUT (client and server option)', async () => {
  const { server, port, next } = await startServer({ idleTimeout: 250 });
  try {
    const client = await open({ port, ...FAST, idleTimeout: 150 });
    const clientError = errorOf(client, 'client idle timeout');
    // Data keeps it alive for a while.
    let lastWrite = 0;
    for (let i = 0; i < 4; i++) {
      client.write('tick');
      lastWrite = Date.now();
      await new Promise((r) => setTimeout(r, 60));
    }
    assert.equal(client.destroyed, false, 'activity kept the session alive');
    const err = await clientError;
    assert.equal(err.code, 'ERR_LZ_IDLE_TIMEOUT');
    const idle = Date.now() - lastWrite;
    assert.ok(idle >= 140 && idle < 1000, `idle for ${idle} ms, counted from the last data`);
    await next();

    // Server-side idle timeout: the server session fails, the client learns the session was aborted.
    const serverErrors: Coded[] = [];
    server.on('sessionError', (e: Coded) => serverErrors.push(e));
    const c2 = await open({ port, ...FAST });
    await next();
    const e2 = await errorOf(c2, 'client error after the server idled out', 3000);
    assert.equal(e2.code, 'ERR_LZ_SESSION_ABORTED');
    assert.match(e2.message, /ERR_LZ_IDLE_TIMEOUT/);
    assert.equal(serverErrors.at(-1)?.code, 'ERR_LZ_IDLE_TIMEOUT');
  } finally {
    await server.close();
  }
});

test('resume timeout: the server is gone, the client fails with ERR_LZ_RESUME_TIMEOUT within the bound', async () => {
  const { server, port } = await startServer();
  const proxy = new FaultProxy({ targetPort: port, seed: 9 });
  await proxy.listen();
  const RESUME = 400;
  const client = await open({ port: proxy.port, ...FAST, resumeTimeout: RESUME });
  try {
    let attempts = 0;
    client.on('reconnecting', () => attempts++);
    const clientError = errorOf(client, 'client resume timeout', 5000);
    const t0 = Date.now();
    // The only way to the server closes: listener gone, connections reset.
    await proxy.close();
    const err = await clientError;
    const elapsed = Date.now() - t0;
    assert.equal(err.code, 'ERR_LZ_RESUME_TIMEOUT');
    assert.ok(elapsed >= RESUME - 20, `failed after ${elapsed} ms, before the resume timeout`);
    assert.ok(elapsed <= RESUME + 2 * FAST.reconnectDelayMax + 300, `failed only after ${elapsed} ms`);
    assert.ok(attempts >= 2, `${attempts} reconnect attempts`);
    assert.equal(client.status, 'closed');
  } finally {
    await stop(server, client);
  }
});

test('a client that vanishes makes the server session fail with ERR_LZ_RESUME_TIMEOUT (sessionError)', async () => {
  const RESUME = 300;
  const { server, port, next } = await startServer({ resumeTimeout: RESUME });
  const proxy = new FaultProxy({ targetPort: port, seed: 10 });
  await proxy.listen();
  const client = await open({ port: proxy.port, ...FAST });
  client.on('error', () => {});
  try {
    const peer = await next();
    const sessionError = within(
      5000,
      'sessionError',
      once(server, 'sessionError') as Promise<[Coded, ServerSession]>,
    );
    const t0 = Date.now();
    // The client's path disappears and so does the client, without a word to the server.
    await proxy.close();
    client.destroy();
    const [err, which] = await sessionError;
    const elapsed = Date.now() - t0;
    assert.equal(err.code, 'ERR_LZ_RESUME_TIMEOUT');
    assert.equal(which, peer);
    assert.ok(elapsed >= RESUME - 20 && elapsed <= RESUME + 500, `server gave up after ${elapsed} ms`);
    assert.equal(server.sessions.size, 0);
  } finally {
    await server.close();
  }
});

test('connecting to a closed port fails with ERR_LZ_CONNECT_FAILED', async () => {
  const port = await closedPort();
  const t0 = Date.now();
  const client = connect({ port });
  const err = await errorOf(client, 'connect failure');
  assert.equal(err.code, 'ERR_LZ_CONNECT_FAILED');
  assert.equal((err.cause as Coded | undefined)?.code, 'ECONNREFUSED');
  assert.ok(Date.now() - t0 < 2000, 'fails fast');
  assert.equal(client.status, 'closed');
  await closed(client);
});
