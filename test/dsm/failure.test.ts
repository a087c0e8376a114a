import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { nodeArgv, SECRET_ENV } from '../../src/dsm/launcher.ts';
import { startCoordinator } from '../../src/dsm/runtime.ts';
import { ErrorCodes, type LazarusError } from '../../src/wire/errors.ts';

const SECRET = 'failure test secret, 16+ bytes';

describe('dsm node failure with fault tolerance off: the run must fail cleanly', () => {
  test('a node killed mid-run fails the run with DSM_PEER_LOST; every process ends', {
    timeout: 60_000,
  }, async () => {
    let started!: () => void;
    const computing = new Promise<void>((resolve) => {
      started = resolve;
    });
    const coordinator = await startCoordinator({
      app: 'sor',
      params: { n: 128, iters: 1_000_000 },
      nodes: 3,
      secret: SECRET,
      onProgress: (e) => {
        if (e.kind === 'started') started();
      },
    });
    const children: ChildProcess[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const [cmd, ...args] = nodeArgv(coordinator.address.host, coordinator.address.port);
        children.push(spawn(cmd!, args, { env: { ...process.env, [SECRET_ENV]: SECRET }, stdio: 'ignore' }));
      }
      const exits = children.map((c) => new Promise((resolve) => c.once('exit', resolve)));
      await computing;
      children[1]!.kill('SIGKILL');
      await assert.rejects(coordinator.run, (err: LazarusError) => err.code === ErrorCodes.DSM_PEER_LOST);
      // The survivor is told to shut down (or sees the loss itself) and exits on its own.
      await Promise.all(exits);
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  });
});
