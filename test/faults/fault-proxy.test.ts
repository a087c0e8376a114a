import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { FaultProxy, type FaultProxyOptions } from '../../src/faults/fault-proxy.ts';
import { SeededRandom } from '../../src/faults/random.ts';

/** What a socket received until it closed, and how it closed. */
interface Received {
  readonly bytes: Buffer;
  readonly error: NodeJS.ErrnoException | undefined;
}

/** `endCloses`: treat the peer's FIN as the end (the target legs are half-open). */
function collect(socket: net.Socket, endCloses = false): Promise<Received> {
  const chunks: Buffer[] = [];
  let error: NodeJS.ErrnoException | undefined;
  socket.on('data', (c: Buffer) => chunks.push(c));
  if (endCloses) socket.on('end', () => socket.destroy());
  socket.on('error', (err) => {
    error = err;
  });
  return new Promise((resolve) => socket.on('close', () => resolve({ bytes: Buffer.concat(chunks), error })));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A target server whose accepted sockets are handed to the test. */
async function target(): Promise<{ server: net.Server; port: number; accepted: () => Promise<net.Socket> }> {
  const queue: net.Socket[] = [];
  const waiters: Array<(s: net.Socket) => void> = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const w = waiters.shift();
    if (w) w(s);
    else queue.push(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    accepted: () => {
      const s = queue.shift();
      return s ? Promise.resolve(s) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

describe('FaultProxy', () => {
  let t: Awaited<ReturnType<typeof target>>;
  const proxies: FaultProxy[] = [];

  async function proxy(options: Omit<FaultProxyOptions, 'targetPort'>): Promise<FaultProxy> {
    const p = new FaultProxy({ targetPort: t.port, ...options });
    proxies.push(p);
    await p.listen();
    return p;
  }

  async function dial(p: FaultProxy): Promise<{ client: net.Socket; server: net.Socket }> {
    const client = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    const server = await t.accepted();
    return { client, server };
  }

  before(async () => {
    t = await target();
  });
  after(async () => {
    for (const p of proxies) await p.close();
    t.server.close();
  });

  test('forwards byte-exact both ways, with half-close, when no fault is configured', async () => {
    const p = await proxy({});
    const { client, server } = await dial(p);
    const rnd = new SeededRandom(7);
    const up = rnd.bytes(3 * 1024 * 1024 + 17);
    const down = rnd.bytes(2 * 1024 * 1024 + 5);
    const atServer = collect(server);
    const atClient = collect(client);
    // Random write sizes, and the server keeps sending after the client's FIN (half-close).
    for (let at = 0; at < up.length; ) {
      const n = rnd.int(1, 100_000);
      client.write(up.subarray(at, at + n));
      at += n;
    }
    client.end();
    await once(server, 'end');
    server.end(down);
    const [s, c] = await Promise.all([atServer, atClient]);
    assert.equal(s.bytes.length, up.length);
    assert.equal(sha(s.bytes), sha(up));
    assert.equal(c.bytes.length, down.length);
    assert.equal(sha(c.bytes), sha(down));
    assert.equal(s.error, undefined);
    assert.equal(c.error, undefined);
    assert.equal(p.stats.breaks, 0);
    assert.equal(p.stats.bytesForwarded, up.length + down.length);
  });

  for (const mode of ['reset', 'close'] as const) {
    test(`a byte budget breaks (${mode}) exactly at the budget`, async () => {
      const p = await proxy({ breakAfterBytes: [100_000, 100_000], breakModes: [mode], seed: 3 });
      const { client, server } = await dial(p);
      const atServer = collect(server, true);
      const atClient = collect(client, true);
      const data = new SeededRandom(11).bytes(300_000);
      // One big write: the cut falls inside a chunk, which must be split at the exact offset.
      client.write(data);
      const [s, c] = await Promise.all([atServer, atClient]);
      assert.equal(s.bytes.length, 100_000);
      assert.ok(s.bytes.equals(data.subarray(0, 100_000)));
      assert.equal(c.bytes.length, 0);
      assert.equal(p.stats.breaks, 1);
      // Only the client leg is checked for RST: Linux reports an RST that arrives behind unread data
      // (the server leg's case) as a plain EOF.
      if (mode === 'reset') assert.equal(c.error?.code, 'ECONNRESET');
      else assert.equal(c.error, undefined);
      assert.equal(p.size, 0);
    });
  }

  test('the budget counts both directions together', async () => {
    const p = await proxy({ breakAfterBytes: [1000, 1000], breakModes: ['close'] });
    const { client, server } = await dial(p);
    const atServer = collect(server, true);
    const atClient = collect(client, true);
    client.write(Buffer.alloc(600, 1));
    await once(server, 'data');
    server.write(Buffer.alloc(600, 2));
    const [s, c] = await Promise.all([atServer, atClient]);
    assert.equal(s.bytes.length, 600);
    assert.equal(c.bytes.length, 400);
  });

  test('breakAll resets every open connection, including stalled ones', async () => {
    const p = await proxy({ breakModes: ['stall'] });
    const a = await dial(p);
    const b = await dial(p);
    const closes = [a.client, a.server, b.client, b.server].map((s) => collect(s));
    // Stall the first pair, then check that breakAll still resets it.
    a.client.write('x');
    await once(a.server, 'data');
    p.breakAll('stall');
    assert.equal(p.breakAll('reset'), 2);
    const results = await Promise.all(closes);
    for (const r of results) assert.equal(r.error?.code, 'ECONNRESET');
    assert.equal(p.size, 0);
  });

  test('a stall stops forwarding both ways while both sockets stay open', async () => {
    const p = await proxy({ breakAfterMs: [50, 50], breakModes: ['stall'] });
    const { client, server } = await dial(p);
    let serverGot = 0;
    let clientGot = 0;
    server.on('data', (c: Buffer) => {
      serverGot += c.length;
    });
    client.on('data', (c: Buffer) => {
      clientGot += c.length;
    });
    client.write('before');
    await once(server, 'data');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(p.stats.breaks, 1);
    client.write('after the stall');
    server.write('nor this way');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(serverGot, 'before'.length);
    assert.equal(clientGot, 0);
    assert.equal(client.destroyed, false);
    assert.equal(server.destroyed, false);
    assert.equal(p.size, 1);
    // When an endpoint gives up, the proxy lets go of the pair.
    const serverClosed = collect(server);
    client.destroy();
    await serverClosed;
    assert.equal(p.size, 0);
  });

  test('latency delays every chunk and keeps their order', async () => {
    const p = await proxy({ latencyMs: 80 });
    const { client, server } = await dial(p);
    const atServer = collect(server);
    const pieces = Array.from({ length: 50 }, (_, i) => Buffer.from(`<${i}>`));
    const start = performance.now();
    const firstAt = once(server, 'data').then(() => performance.now() - start);
    for (const piece of pieces) client.write(piece);
    client.end();
    assert.ok((await firstAt) >= 75, 'the first byte arrives after the latency');
    await once(server, 'end');
    server.end();
    const s = await atServer;
    assert.equal(s.bytes.toString(), pieces.join(''));
  });

  test('is deterministic for a seed', async () => {
    const budgets = async (seed: number) => {
      const p = await proxy({ breakAfterBytes: [10, 5000], breakModes: ['close'], seed });
      const out: number[] = [];
      for (let i = 0; i < 3; i++) {
        const { client, server } = await dial(p);
        const atServer = collect(server, true);
        collect(client, true);
        client.write(Buffer.alloc(6000));
        out.push((await atServer).bytes.length);
      }
      return out;
    };
    const a = await budgets(42);
    assert.deepEqual(await budgets(42), a);
    assert.notDeepEqual(await budgets(43), a);
  });

  test('refuses bad ranges and empty modes with ERR_LZ_INVALID_ARGUMENT', () => {
    const bad: Array<Omit<FaultProxyOptions, 'targetPort'>> = [
      { breakAfterBytes: [10, 5] },
      { breakAfterBytes: [-1, 5] },
      { breakAfterMs: [Number.NaN, 5] },
      { breakAfterMs: [100, 50] },
      { breakModes: [] },
      { latencyMs: -1 },
    ];
    for (const options of bad) {
      assert.throws(() => new FaultProxy({ targetPort: 1, ...options }), { code: 'ERR_LZ_INVALID_ARGUMENT' });
    }
    const p = new FaultProxy({ targetPort: 1 });
    assert.throws(() => p.configure({ breakAfterBytes: [5, 1] }), { code: 'ERR_LZ_INVALID_ARGUMENT' });
  });
});
