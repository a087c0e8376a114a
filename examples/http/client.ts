/**
 * HTTP client: sends GET and POST requests on one keep-alive migratory session, moving it to another
 * server every few requests and in the middle of some, and checks every response.
 *   npx tsx examples/http/client.ts [--port 7700] [--requests 50]
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { itemBody, SessionAgent } from './service.ts';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '7700' }, requests: { type: 'string', default: '50' } },
});
const agent = new SessionAgent({ port: Number(values.port) });

function request(
  options: http.RequestOptions,
  body?: Buffer,
): Promise<{ res: http.IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...options, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (let i = 0; i < Number(values.requests); i++) {
  const session = agent.sessions[0];
  if (session && i % 5 === 4) {
    // Between requests the agent unrefs its idle connection; the move must keep the process alive.
    session.ref();
    await session.migrate();
  }
  if (i % 2 === 0) {
    const size = 256 * 1024;
    const { res, body } = await request({ path: `/item/${i}?size=${size}` });
    const ok = body.equals(itemBody(i, size));
    console.log(
      `GET  #${res.headers['x-request-index']} via ${agent.sessions[0]?.serverId}: ${ok ? 'ok' : 'WRONG'}`,
    );
  } else {
    const upload = itemBody(1000 + i, 64 * 1024);
    const { res, body } = await request({ path: '/echo', method: 'POST' }, upload);
    const ok = JSON.parse(body.toString()).sha256 === createHash('sha256').update(upload).digest('hex');
    console.log(
      `POST #${res.headers['x-request-index']} via ${agent.sessions[0]?.serverId}: ${ok ? 'ok' : 'WRONG'}`,
    );
  }
}
console.log(`${agent.sessions.length} session(s) for ${values.requests} requests`);
agent.destroy();
