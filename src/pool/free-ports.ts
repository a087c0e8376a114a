import net, { type AddressInfo } from 'node:net';

/**
 * `n` distinct ports free right now on `host`. Pool members must know each other's ports before any
 * of them starts, so they cannot simply listen on port 0; all `n` are held until all are found, so
 * they are distinct (another process could still take one before it is used).
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, host, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
