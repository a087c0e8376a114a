import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nodeArgv, runApp, SECRET_ENV } from '../../src/dsm/launcher.ts';
import { startCoordinator } from '../../src/dsm/runtime.ts';
import { ErrorCodes, type LazarusError } from '../../src/wire/errors.ts';

const APP = fileURLToPath(new URL('./fixtures/counter-app.ts', import.meta.url));
const SECRET = 'custom app test secret 0123456789';

describe('dsm apps loaded from a module path', () => {
  test('a user app (lock-protected counter) runs on 3 local nodes', async () => {
    const r = await runApp({ app: APP, nodes: 3, params: { k: 15, nodes: 3 } });
    assert.ok(r.check.ok, r.check.detail);
    assert.equal(
      r.run.stats.reduce((n, s) => n + s.lockAcquires, 0),
      45,
    );
  });

  test('a joined node refuses to import a module unless allowed', async () => {
    const coordinator = await startCoordinator({
      app: APP,
      params: { k: 1, nodes: 2 },
      nodes: 2,
      secret: SECRET,
    });
    const [cmd, ...args] = nodeArgv(coordinator.address.host, coordinator.address.port);
    const child: ChildProcess = spawn(cmd!, args, {
      env: { ...process.env, [SECRET_ENV]: SECRET },
      stdio: 'ignore',
    });
    try {
      const exit = new Promise((resolve) => child.once('exit', resolve));
      await assert.rejects(coordinator.run, (err: LazarusError) => {
        assert.equal(err.code, ErrorCodes.PROTOCOL);
        assert.match(err.message, /refusing to load app module/);
        return true;
      });
      assert.equal(await exit, 1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('an app that throws on one node fails the run with DSM_APP_FAILED and its message', async () => {
    const failing = fileURLToPath(new URL('./fixtures/failing-app.ts', import.meta.url));
    for (const nodes of [1, 3]) {
      await assert.rejects(runApp({ app: failing, nodes }), (err: LazarusError) => {
        assert.equal(err.code, ErrorCodes.DSM_APP_FAILED);
        assert.match(err.message, /deliberate failure in the app/);
        return true;
      });
    }
  });
});
