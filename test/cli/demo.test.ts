import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lazarus } from './lazarus.ts';

/** The verdict table's rows, one per session. */
function verdictRows(stdout: string): string[] {
  return stdout.split('\n').filter((l) => /^#\d+\s+[0-9a-f]{12}\s/.test(l));
}

describe('lazarus demo', { concurrency: true }, () => {
  test('moves sessions through overload, a deploy and a slow path, and verifies every byte', async () => {
    const { code, stdout, stderr } = await lazarus([
      'demo',
      '--clients',
      '6',
      '--duration',
      '15',
      '--seed',
      '5',
    ]);
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    const rows = verdictRows(stdout);
    assert.equal(rows.length, 6);
    for (const row of rows) assert.match(row, /sha-256 match .*sha-256 match .* ok$/);
    assert.match(stdout, /PASS: 6\/6 sessions byte-exact in both directions, 3\/3 scripted events happened/);
    // Each event had its effect, and the clients' own reports agree.
    assert.match(stdout, /^ {2}drain +[abc] +ok +[1-9]\d* sessions moved away .*, 0 left; restarted/m);
    assert.match(stdout, /^ {2}overload +[abc] +ok +capacity \d+ → \d+: [1-9]\d* sessions advised away/m);
    assert.match(stdout, /^ {2}degraded path +[abc] +ok +[1-9]\d* of \d+ sessions moved away/m);
    const migrations = /^migrations: (\d+) \((.*)\)$/m.exec(stdout);
    assert.ok(migrations, stdout);
    for (const reason of ['drain', 'overload', 'rtt|throughput']) {
      assert.match(migrations[2]!, new RegExp(`(${reason}) [1-9]`), stdout);
    }
  });

  test('fails, and says which direction, when the servers corrupt a byte', async () => {
    const { code, stdout } = await lazarus(['demo', '--clients', '3', '--duration', '3', '--corrupt']);
    assert.equal(code, 1, stdout);
    const rows = verdictRows(stdout);
    assert.equal(rows.length, 3);
    for (const row of rows) {
      // What the servers received is intact; what they sent back is not.
      assert.match(row, /sha-256 match +[\d.]+ [KM]iB MISMATCH .*FAIL/);
    }
    assert.match(stdout, /FAIL: 3 of 3 sessions did not verify/);
  });

  test('rejects bad arguments with exit code 2', async () => {
    for (const args of [
      ['demo', '--clients', '0'],
      ['demo', '--duration', 'x'],
      ['demo', '--rate', '12q'],
      ['demo', '--rate', '0'],
      ['proxy', '--target', 'localhost:99999'],
      ['proxy', '--target', '127.0.0.1:1', '--break-bytes', '10-5'],
      ['proxy', '--target', '127.0.0.1:1', '--modes', 'reset,explode'],
      ['nope'],
    ]) {
      const { code, stderr } = await lazarus(args);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, /error: /, args.join(' '));
    }
  });
});
