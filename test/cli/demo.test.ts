import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Runs `lazarus <args>` as a real process from the sources; resolves with its exit code and output. */
function lazarus(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The verdict table's rows, one per session. */
function verdictRows(stdout: string): string[] {
  return stdout.split('\n').filter((l) => /^#\d+\s+[0-9a-f]{12}\s/.test(l));
}

describe('lazarus demo', { concurrency: true }, () => {
  test('streams through broken connections and verifies every byte both ways', async () => {
    const { code, stdout, stderr } = await lazarus([
      'demo',
      '--clients',
      '2',
      '--duration',
      '3',
      '--seed',
      '5',
    ]);
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    const rows = verdictRows(stdout);
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.match(row, /sha-256 match .*sha-256 match .* ok$/);
    }
    const pass =
      /PASS: 2\/2 sessions byte-exact in both directions across (\d+) injected connection breaks/.exec(
        stdout,
      );
    assert.ok(pass, stdout);
    assert.ok(Number(pass[1]) > 0, 'the proxy broke connections');
    // Sessions really went through breaks: at least one resumed.
    const resumes = rows.map((r) => Number(/match\s+(\d+)\s+ok$/.exec(r)?.[1]));
    assert.ok(
      resumes.some((n) => n > 0),
      stdout,
    );
  });

  test('fails, and says which direction, when the server corrupts a byte', async () => {
    const { code, stdout } = await lazarus([
      'demo',
      '--clients',
      '2',
      '--duration',
      '2',
      '--bytes',
      '1M',
      '--corrupt',
    ]);
    assert.equal(code, 1, stdout);
    const rows = verdictRows(stdout);
    assert.equal(rows.length, 2);
    for (const row of rows) {
      // What the server received is intact; what it sent back is not.
      assert.match(row, /1\.0 MiB sha-256 match\s+1\.0 MiB MISMATCH .*FAIL/);
    }
    assert.match(stdout, /FAIL: 2 of 2 sessions did not verify/);
  });

  test('rejects bad arguments with exit code 2', async () => {
    for (const args of [
      ['demo', '--clients', '0'],
      ['demo', '--duration', 'x'],
      ['demo', '--bytes', '12q'],
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
