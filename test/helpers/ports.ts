import net, { type AddressInfo } from 'node:net';

/**
 * `n` distinct loopback ports free at the time of the call. Pool members need their ports before
 * they start (every member lists every other), so tests cannot simply listen on port 0. All `n`
 * listeners are open at once, so the ports are distinct; a race with another process is possible but
 * short.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
