import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { allowedCpus, findTaskset, planBinding } from '../../src/dsm/cpu-binding.ts';
import { within } from '../helpers/streams.ts';

const ENTRY = fileURLToPath(new URL('./cli-main.ts', import.meta.url));
const SECRET = 'a cluster secret for the cli test';
/** An FT run long enough to kill a node in: lu of 512 on 3 nodes, checkpoints every 100 ms. */
const FT_LU = [
  'dsm',
  'run',
  'lu',
  '--nodes',
  '3',
  '--size',
  '512',
  '-p',
  'bs=8',
  '--ft',
  '--ckpt-every',
  '100',
];

function lazarus(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function outcome(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c) => {
    stdout += c;
  });
  child.stderr?.on('data', (c) => {
    stderr += c;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Resolves with the first match of `re` in what `child` has written to stderr so far or later. */
function stderrMatch(child: ChildProcess, re: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (c: Buffer) => {
      seen += c;
      const m = re.exec(seen);
      if (!m) return;
      child.stderr?.off('data', onData);
      resolve(m);
    };
    child.stderr?.on('data', onData);
    child.once('close', () => reject(new Error(`exited before printing ${re}: ${seen}`)));
  });
}

/** An FT lu run on 3 nodes whose third node is to join by address; its processes die with the test. */
async function ftRunAwaitingANode(t: TestContext, extra: string[] = []) {
  const ft = lazarus([...FT_LU, ...extra, '--local', '2', '--json'], { LAZARUS_DSM_SECRET: SECRET });
  const children: ChildProcess[] = [ft];
  t.after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });
  const done = outcome(ft);
  const join = (await stderrMatch(ft, /--join (\S+)/))[1]!;
  return { ft, children, done, join };
}

describe('lazarus dsm (CLI)', () => {
  test('dsm run prints a checked summary', async () => {
    const r = await outcome(
      lazarus(['dsm', 'run', 'lu', '--nodes', '2', '--size', '32', '-p', 'bs=4', '--json']),
    );
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.nodes, 2);
    assert.deepEqual(summary.params, { n: 32, bs: 4, seed: 7 });
    assert.equal(summary.check.ok, true);
    assert.ok(summary.totals.pageFetches > 0);
    assert.match(r.stderr, /node 1 joined/);
    // Binding is the launcher's (cpu-binding.test.ts); here: the summary says what it did, and --no-bind.
    const canBind = planBinding(2, allowedCpus() ?? []) !== undefined && findTaskset() !== undefined;
    assert.equal(summary.binding !== undefined, canBind);
    const free = await outcome(
      lazarus(['dsm', 'run', 'lu', '--nodes', '2', '--size', '32', '-p', 'bs=4', '--json', '--no-bind']),
    );
    assert.equal(free.code, 0, free.stderr);
    assert.equal(JSON.parse(free.stdout).binding, undefined);
  });

  test('dsm node joins a run by address; a node without the secret is refused', async (t) => {
    const run = lazarus(['dsm', 'run', 'matmul', '--nodes', '2', '--size', '24', '--local', '0', '--json'], {
      LAZARUS_DSM_SECRET: SECRET,
    });
    const children: ChildProcess[] = [run];
    t.after(() => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    });
    const done = outcome(run);
    const join = await new Promise<string>((resolve) => {
      let seen = '';
      run.stderr?.on('data', (c) => {
        seen += c;
        const m = /--join (\S+)/.exec(seen);
        if (m) resolve(m[1]!);
      });
    });
    const intruder = lazarus(['dsm', 'node', '--join', join], {
      LAZARUS_DSM_SECRET: 'wrong secret, long enough',
    });
    children.push(intruder);
    const refused = await outcome(intruder);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ERR_LZ_CONNECT_FAILED.*failed to prove the cluster secret/);
    const node = lazarus(['dsm', 'node', '--join', join], { LAZARUS_DSM_SECRET: SECRET });
    children.push(node);
    const [r, n] = await Promise.all([done, outcome(node)]);
    assert.equal(n.code, 0, n.stderr);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).check.ok, true);
  });

  test('dsm run --ft --kill-at 0:<s> (node 0 too: the supervisor runs the managers) shows the failure and the recovery live, and checks the result', async () => {
    // lu of 512 computes for well over the 0.1 s before the kill (checkpoints every 100 ms).
    const r = await outcome(lazarus([...FT_LU, '--kill-at', '0:0.1', '--json']));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /node 0 will be killed at \+0\.10s/);
    assert.match(r.stderr, /node 0 LOST/);
    assert.match(r.stderr, /node 0 restarted \(pid \d+\)/);
    assert.match(r.stderr, /node 0 rejoined/);
    assert.match(r.stderr, /node 0 caught up/);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.check.ok, true, summary.check.detail);
    assert.equal(summary.perNode[0].ft.recoveries, 1, 'node 0 ran as a recovery');
    assert.ok(summary.supervisor?.ft, 'the supervisor reports its log');
    // Node 0's compute time covers only its last life; the run's own duration spans the recovery.
    assert.ok(
      summary.runMs > summary.computeMs,
      `run ${summary.runMs} ms longer than node 0's last life ${summary.computeMs} ms`,
    );
    const bad = await outcome(lazarus(['dsm', 'run', 'lu', '--nodes', '2', '--kill-at', '1:1']));
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--kill-at needs --ft/);
  });

  test('dsm node --keep: a joined node SIGKILLed mid-run is restarted as the same node, recovers, and the run checks (--ft)', async (t) => {
    // Two nodes are the launcher's children (ids 0 and 1, which it claims); the third joins.
    // lu of 768 (the last --size counts): on 3 nodes it computes for a second or more, so the kill
    // lands mid-run (lu of 512 can be done within 0.3 s).
    const { ft, children, done, join } = await ftRunAwaitingANode(t, ['--size', '768']);
    const node = lazarus(['dsm', 'node', '--join', join, '--keep'], { LAZARUS_DSM_SECRET: SECRET });
    children.push(node);
    const kept = outcome(node);
    const pid = Number((await stderrMatch(node, /node process started \(pid (\d+)\)/))[1]);
    await stderrMatch(ft, /all nodes connected: computing/);
    await new Promise((r) => setTimeout(r, 150));
    process.kill(pid, 'SIGKILL');
    const [r, n] = await within(90_000, 'the run and the kept node', Promise.all([done, kept]));
    assert.equal(n.code, 0, `node:\n${n.stderr}\nrun:\n${r.stderr}`);
    assert.match(n.stderr, /node 2 died \(SIGKILL\); restarted as pid \d+/, 'the joined node got id 2');
    assert.match(n.stderr, /node 2: run complete/);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /node 2 LOST/);
    assert.match(r.stderr, /node 2 rejoined/);
    assert.match(r.stderr, /node 2 caught up/);
    assert.equal(JSON.parse(r.stdout).check.ok, true);
  });

  test('dsm node --keep: a joined node that dies on receiving the peer table (before its keeper knows its id) comes back as that node (--ft)', async (t) => {
    const { children, done, join } = await ftRunAwaitingANode(t);
    // Its first process kills itself on START, before reporting its id to the keeper.
    const node = lazarus(['dsm', 'node', '--join', join, '--keep'], {
      LAZARUS_DSM_SECRET: SECRET,
      LAZARUS_DSM_CRASH: 'start:1',
    });
    children.push(node);
    const [r, n] = await within(90_000, 'the run and the kept node', Promise.all([done, outcome(node)]));
    assert.equal(n.code, 0, `node:\n${n.stderr}\nrun:\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /before the start: node 2 LOST/);
    assert.match(r.stderr, /node 2 rejoined/, 'given its id back, to recover');
    assert.match(n.stderr, /node 2: run complete/);
    assert.equal(JSON.parse(r.stdout).check.ok, true);
  });

  test('--ft: a node SIGKILLed after joining, before the peer table went out, joins again afresh and the run checks', async (t) => {
    // The run cannot start before the remote node joins: node 1 dies in that window for sure.
    const { ft, children, done, join } = await ftRunAwaitingANode(t);
    await stderrMatch(ft, /node 1 joined/);
    const victim = spawnSync('pgrep', ['-f', `${join.replace(/\./g, '\\.')}.*--id 1`])
      .stdout.toString()
      .trim();
    assert.match(victim, /^\d+$/, 'node 1 is one process');
    process.kill(Number(victim), 'SIGKILL');
    await within(
      60_000,
      'node 1 to join again',
      stderrMatch(ft, /node 1 joined.*node 1 LOST.*node 1 joined/s),
    );
    const node = lazarus(['dsm', 'node', '--join', join], { LAZARUS_DSM_SECRET: SECRET });
    children.push(node);
    const [r, n] = await within(90_000, 'the run', Promise.all([done, outcome(node)]));
    assert.equal(n.code, 0, n.stderr);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /before the start: node 1 LOST/);
    assert.doesNotMatch(r.stderr, /rejoined/, 'joined afresh: nothing to recover');
    assert.equal(JSON.parse(r.stdout).check.ok, true);
  });

  test('usage errors exit non-zero', async () => {
    const r = await outcome(lazarus(['dsm', 'run', 'sor']));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--nodes/);
    const bad = await outcome(lazarus(['dsm', 'run', 'nosuchapp', '--nodes', '1']));
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown DSM app/);
  });
});
