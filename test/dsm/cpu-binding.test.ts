import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  allowedCpus,
  boundCommand,
  findTaskset,
  parseCpuList,
  planBinding,
} from '../../src/dsm/cpu-binding.ts';
import { runCluster } from '../../src/dsm/launcher.ts';

const AFFINITY_APP = fileURLToPath(new URL('./fixtures/affinity-app.ts', import.meta.url));
const cpus = allowedCpus();
const taskset = findTaskset();
/** Why the tests that really bind processes cannot run here, if they cannot. */
const cannotBind =
  cpus === undefined
    ? 'no /proc/self/status (not Linux): binding is off'
    : taskset === undefined
      ? 'no taskset on PATH (util-linux): binding is off'
      : cpus.length < 2
        ? `only ${cpus.length} CPU allowed: 2 nodes cannot have one each`
        : undefined;
if (cannotBind) console.log(`# skipping the real binding tests: ${cannotBind}`);

const mask = (list: readonly number[]) => list.reduce((m, c) => m + 2 ** c, 0);

describe('cpu binding', () => {
  test('CPU lists parse as the kernel writes them; anything else is refused', () => {
    assert.deepEqual(parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseCpuList('5'), [5]);
    for (const bad of ['', '3-1', 'a', '1,,2', '0-99999', '-1'])
      assert.equal(parseCpuList(bad), undefined, bad);
  });

  test('each node gets its own equal share; no binding when oversubscribed or a share is every CPU', () => {
    assert.deepEqual(planBinding(2, [0, 1]), [[0], [1]]);
    assert.deepEqual(planBinding(2, [0, 1, 2, 3]), [
      [0, 1],
      [2, 3],
    ]);
    assert.deepEqual(planBinding(3, [4, 5, 6, 7]), [[4], [5], [6]]);
    assert.equal(planBinding(1, [0, 1]), undefined);
    assert.equal(planBinding(4, [0, 1]), undefined);
    assert.equal(planBinding(0, [0, 1]), undefined);
  });

  test('taskset is found on PATH only where it is', () => {
    assert.equal(findTaskset('/nonexistent-dir'), undefined);
    if (taskset) assert.equal(findTaskset(`/nonexistent-dir:${taskset.replace(/\/taskset$/, '')}`), taskset);
  });

  test('a bound command really runs on its CPUs only', { skip: cannotBind }, () => {
    const cpu = cpus![cpus!.length - 1]!;
    const cmd = boundCommand(taskset!, [cpu], { command: 'cat', args: ['/proc/self/status'] });
    const status = execFileSync(cmd.command, cmd.args, { encoding: 'utf8' });
    assert.match(status, new RegExp(`^Cpus_allowed_list:\\s*${cpu}$`, 'm'));
  });

  test('the launcher binds its node processes, one CPU each, and reports it', {
    skip: cannotBind,
  }, async () => {
    // With FT every node is a child process, node 0 (which gathers the result) included.
    const run = await runCluster({ app: AFFINITY_APP, params: {}, nodes: 2, ft: {} });
    assert.deepEqual(run.binding, [
      { node: 0, cpus: [cpus![0]] },
      { node: 1, cpus: [cpus![1]] },
    ]);
    assert.deepEqual([...(run.result as Float64Array)], [mask([cpus![0]!]), mask([cpus![1]!])]);
  });

  test('without FT node 0 is this process and stays unbound; --no-bind binds nothing', {
    skip: cannotBind,
  }, async () => {
    const bound = await runCluster({ app: AFFINITY_APP, params: {}, nodes: 2 });
    assert.deepEqual(bound.binding, [{ node: 1, cpus: [cpus![1]] }]);
    assert.deepEqual([...(bound.result as Float64Array)], [mask(cpus!), mask([cpus![1]!])]);

    const free = await runCluster({ app: AFFINITY_APP, params: {}, nodes: 2, bind: false });
    assert.equal(free.binding, undefined);
    assert.deepEqual([...(free.result as Float64Array)], [mask(cpus!), mask(cpus!)]);
  });

  test('more nodes than CPUs: nobody is bound', { skip: cannotBind }, async () => {
    const nodes = cpus!.length + 1;
    const run = await runCluster({ app: AFFINITY_APP, params: {}, nodes });
    assert.equal(run.binding, undefined);
    assert.deepEqual([...(run.result as Float64Array)], Array(nodes).fill(mask(cpus!)));
  });
});
