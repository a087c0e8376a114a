import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { connect, createServer } from '../../src/session/index.ts';

/** What each benchmark compares: a lazarus session, and the raw TCP socket it runs over. */
export type Transport = 'session' | 'raw';

export type Ports = Readonly<Record<Transport, number>>;

export interface Listeners {
  readonly ports: Ports;
  close(): Promise<void>;
}

/**
 * Listens on loopback with both transports and hands every incoming stream (a raw socket, or a whole
 * session) to `onStream`. Nagle is off on both, as sessions turn it off by default.
 */
export async function listenBoth(
  onStream: (stream: Duplex, transport: Transport) => void,
): Promise<Listeners> {
  const raw = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    onStream(socket, 'raw');
  });
  const sessions = createServer({}, (session) => onStream(session, 'session'));
  raw.listen(0, '127.0.0.1');
  await once(raw, 'listening');
  const sessionAddress = await sessions.listen(0, '127.0.0.1');
  return {
    ports: { raw: (raw.address() as net.AddressInfo).port, session: sessionAddress.port },
    close: async () => {
      await sessions.close();
      await new Promise<void>((resolve) => raw.close(() => resolve()));
    },
  };
}

/** Opens a stream of `transport` to `port` on loopback; resolves once it is usable. */
export async function dial(transport: Transport, port: number): Promise<Duplex> {
  if (transport === 'raw') {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    await once(socket, 'connect');
    return socket;
  }
  const session = connect({ port });
  // once() rejects on 'error', so a session that cannot open fails the benchmark instead of hanging.
  await once(session, 'connect');
  return session;
}

/** Ends our side and waits until the stream is closed, so the next run starts from a quiet machine. */
export async function closeStream(stream: Duplex): Promise<void> {
  if (stream.closed) return;
  const closed = once(stream, 'close');
  stream.end();
  await closed;
}
