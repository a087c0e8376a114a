import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { createHttpService, itemBody, SessionAgent } from '../../examples/http/service.ts';
import { membersOn, type RunningPool, startPool } from '../../examples/pool.ts';
import { SeededRandom } from '../../src/faults/random.ts';
import type { Member } from '../../src/pool/index.ts';
import { freePorts } from '../helpers/ports.ts';
import { within } from '../helpers/streams.ts';

let members: Member[];
let pool: RunningPool;
let httpServer: http.Server;

before(async () => {
  members = membersOn(await freePorts(6));
  const service = createHttpService();
  httpServer = service.httpServer;
  pool = await startPool(members, service.handler);
});

after(async () => {
  await pool.close();
  httpServer.closeAllConnections();
});

interface Response {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * One request on the agent. `onResponseBytes` sees the response's progress; `beforeRest` runs after
 * the first half of the request body is written and before the second.
 */
function request(
  agent: http.Agent,
  options: http.RequestOptions,
  body: Buffer | undefined,
  hooks: { onResponseBytes?: (n: number) => void; beforeRest?: () => Promise<void> } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...options, agent }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        hooks.onResponseBytes?.(n);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (!body) {
      req.end();
      return;
    }
    req.setHeader('content-length', body.length);
    const half = body.length >> 1;
    req.write(body.subarray(0, half));
    (hooks.beforeRest?.() ?? Promise.resolve()).then(() => req.end(body.subarray(half)), reject);
  });
}

test('http: keep-alive requests on one session, moved between and during requests, all answered right', async () => {
  const random = new SeededRandom(21);
  const agent = new SessionAgent({ port: members[0]!.port });
  const counts = { between: 0, duringResponse: 0, duringUpload: 0 };
  const session = () => {
    const s = agent.sessions[0];
    assert.ok(s, 'the agent opened a session');
    return s;
  };
  const moveTo = (): Promise<void> => {
    const s = session();
    // An idle keep-alive connection is unref'ed by the agent; a move must still run to its end.
    s.ref();
    const to = random.pick(members.filter((m) => m.id !== s.serverId)).id;
    return s.migrate(to);
  };
  const total = 240;
  try {
    for (let i = 0; i < total; i++) {
      if (i > 0 && random.next() < 0.25) {
        await moveTo();
        counts.between++;
      }
      const label = `request ${i}`;
      if (random.next() < 0.5) {
        const size = random.int(0, 512 * 1024);
        let moveAt = size > 4096 && random.next() < 0.4 ? random.int(1, size - 1) : -1;
        let moving: Promise<void> | undefined;
        const res = await within(
          10_000,
          label,
          request(agent, { path: `/item/${i}?size=${size}` }, undefined, {
            onResponseBytes: (n) => {
              if (moveAt >= 0 && n >= moveAt) {
                moveAt = -1;
                moving = moveTo();
              }
            },
          }),
        );
        assert.equal(res.status, 200, `${label}: status`);
        assert.equal(res.headers['x-request-index'], String(i), `${label}: index on the connection`);
        assert.ok(res.body.equals(itemBody(i, size)), `${label}: body of ${size} bytes`);
        if (moving) {
          await moving;
          counts.duringResponse++;
        }
      } else {
        const upload = itemBody(100_000 + i, random.int(0, 256 * 1024));
        const moveInside = upload.length > 1 && random.next() < 0.4;
        const res = await within(
          10_000,
          label,
          request(agent, { path: '/echo', method: 'POST' }, upload, {
            beforeRest: async () => {
              if (!moveInside) return;
              await moveTo();
              counts.duringUpload++;
            },
          }),
        );
        assert.equal(res.status, 200, `${label}: status`);
        const expected = {
          bytes: upload.length,
          sha256: createHash('sha256').update(upload).digest('hex'),
          index: i,
        };
        assert.deepEqual(JSON.parse(res.body.toString()), expected, `${label}: echo`);
      }
    }
  } finally {
    const s = agent.sessions[0];
    s?.ref();
    const closed = new Promise((resolve) => (s && !s.destroyed ? s.once('close', resolve) : resolve(0)));
    agent.destroy();
    await within(5000, 'session close', closed);
  }
  assert.equal(agent.sessions.length, 1, 'one session carried every request');
  assert.ok(counts.between >= 40, `moved ${counts.between} times between requests`);
  assert.ok(counts.duringUpload >= 20, `moved ${counts.duringUpload} times during uploads`);
  assert.ok(counts.duringResponse >= 20, `moved ${counts.duringResponse} times during responses`);
});
