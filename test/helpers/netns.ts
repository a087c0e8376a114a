import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Virtual hosts for multi-host tests: each host is a network namespace with its own address, joined
 * to a bridge in the test's namespace (the bridge address is how the test process itself is reached).
 * Needs root and iproute2; `unavailableReason()` says why not, for `t.skip`.
 */

const run = promisify(execFile);

export interface VirtualHost {
  /** Namespace name. */
  readonly name: string;
  readonly address: string;
  /** A command line that runs `argv` inside this host's namespace. */
  wrap(argv: readonly string[]): { command: string; args: string[] };
  spawn(argv: readonly string[], options?: SpawnOptions): ChildProcess;
}

export interface VirtualNetwork {
  /** The address of the test's own namespace on the bridge. */
  readonly bridgeAddress: string;
  readonly hosts: readonly VirtualHost[];
  /** Kills every process left in the namespaces and deletes them and the bridge. Idempotent. */
  destroy(): Promise<void>;
}

export interface NetworkOptions {
  readonly hosts: number;
  /** One-way delay added on every host's link (tc netem; needs the sch_netem kernel module). */
  readonly delayMs?: number;
}

let counter = 0;

/** A /24 (`prefix.x`) held by this process until `release()`. */
export interface SubnetClaim {
  readonly subnet: string;
  release(): void;
}

const CLAIMS = join(tmpdir(), 'lazarus-netns-claims');

/**
 * Claims a /24 under `prefix` (e.g. '10.213') that no route in this namespace uses yet. Test files
 * run two at a time, and a killed run leaves its bridge behind: a subnet picked at random could be
 * routed twice, and a client's SYN would go to the other bridge. The route table rules out leftovers;
 * a lock file per subnet (holding its owner's pid, reclaimed once that process is gone) rules out a
 * concurrent process that has claimed but not yet routed it.
 */
export async function claimSubnet(prefix: string): Promise<SubnetClaim> {
  const { stdout } = await run('ip', ['-4', '-o', 'route', 'show', 'table', 'all']);
  const used = new Set<number>();
  for (const match of stdout.matchAll(new RegExp(`\\b${prefix.replaceAll('.', '\\.')}\\.(\\d+)\\.`, 'g')))
    used.add(Number(match[1]));
  mkdirSync(CLAIMS, { recursive: true });
  const start = Math.floor(Math.random() * 250);
  for (let i = 0; i < 250; i++) {
    const x = (start + i) % 250;
    if (used.has(x)) continue;
    const subnet = `${prefix}.${x}`;
    const file = join(CLAIMS, subnet);
    if (!tryLock(file)) continue;
    return {
      subnet,
      release: () => {
        try {
          unlinkSync(file);
        } catch {
          // Already released.
        }
      },
    };
  }
  throw new Error(`no free /24 under ${prefix} (claims in ${CLAIMS})`);
}

/** Creates `file` holding this pid; a file left by a process that is gone is taken over. */
function tryLock(file: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSync(file, 'utf8').trim());
    if (owner === process.pid || isAlive(owner)) return false;
    try {
      unlinkSync(file);
    } catch {
      // Another process took it over first; try again.
    }
  }
  return false;
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why namespaces cannot be made here, or undefined when they can. */
export async function unavailableReason(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    await run('ip', ['-V']);
  } catch {
    return 'iproute2 (ip) is not installed';
  }
  return undefined;
}

export async function createNetwork(options: NetworkOptions): Promise<VirtualNetwork> {
  if (options.hosts < 1 || options.hosts > 200) throw new Error('between 1 and 200 hosts');
  const id = `${process.pid % 100000}${(counter++).toString(36)}`;
  const claim = await claimSubnet('10.213');
  const { subnet } = claim;
  const bridge = `lzb${id}`;
  const hosts: VirtualHost[] = [];
  const created: string[] = [];
  const links: string[] = [];
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    for (const ns of created) {
      const pids = await run('ip', ['netns', 'pids', ns]).then(
        (r) => r.stdout.split(/\s+/).filter(Boolean),
        () => [],
      );
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await run('ip', ['netns', 'del', ns]).catch(() => {});
    }
    // A killed process's TCP sockets still holding unsent data (say, its link was cut) keep its
    // namespace alive in the kernel after `ip netns del`, and with it the veth pair into this
    // namespace: delete the links outright.
    for (const link of links) await run('ip', ['link', 'del', link]).catch(() => {});
    await run('ip', ['link', 'del', bridge]).catch(() => {});
    claim.release();
  };
  try {
    await ip('link', 'add', bridge, 'type', 'bridge');
    await ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
    for (let i = 0; i < options.hosts; i++) {
      const ns = `lzn${id}h${i}`;
      const outside = `lzv${id}o${i}`;
      const inside = `lzv${id}i${i}`;
      const address = `${subnet}.${i + 2}`;
      await ip('netns', 'add', ns);
      created.push(ns);
      await ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
      links.push(outside);
      await ip('link', 'set', inside, 'netns', ns);
      await ip('link', 'set', outside, 'master', bridge);
      await ip('link', 'set', outside, 'up');
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', inside);
      await ip('-n', ns, 'link', 'set', inside, 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      if (options.delayMs)
        await run('tc', [
          '-n',
          ns,
          'qdisc',
          'add',
          'dev',
          inside,
          'root',
          'netem',
          'delay',
          `${options.delayMs}ms`,
        ]);
      const wrap = (argv: readonly string[]) => ({ command: 'ip', args: ['netns', 'exec', ns, ...argv] });
      hosts.push({
        name: ns,
        address,
        wrap,
        spawn: (argv, spawnOptions = {}) => {
          const w = wrap(argv);
          return spawn(w.command, w.args, spawnOptions);
        },
      });
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  return { bridgeAddress: `${subnet}.1`, hosts, destroy };
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

/** The name of the interface that carries `host.address` inside its namespace (for `ip link`, `tc`). */
export async function interfaceOf(host: VirtualHost): Promise<string> {
  const { stdout } = await run('ip', [
    '-n',
    host.name,
    '-o',
    '-4',
    'addr',
    'show',
    'to',
    `${host.address}/32`,
  ]);
  const name = stdout.trim().split(/\s+/)[1]?.replace(/@.*$/, '');
  if (!name) throw new Error(`no interface carries ${host.address} in ${host.name}`);
  return name;
}

/** Runs `ip args...` inside namespace `ns`, or in the test's own namespace when `ns` is undefined. */
export async function ipIn(ns: string | undefined, ...args: string[]): Promise<void> {
  await run('ip', ns === undefined ? args : ['-n', ns, ...args]);
}

/** Runs `tc args...` inside namespace `ns`, or in the test's own namespace when `ns` is undefined. */
export async function tcIn(ns: string | undefined, ...args: string[]): Promise<void> {
  await run('tc', ns === undefined ? args : ['-n', ns, ...args]);
}

/** Why `tc` cannot be used here, or undefined when it can. */
export async function tcUnavailableReason(): Promise<string | undefined> {
  try {
    await run('tc', ['-V']);
  } catch {
    return 'tc (iproute2) is not installed';
  }
  return undefined;
}

/** One host's attachment to a LanNetwork. */
export interface LanPort {
  /** The host it belongs to. */
  readonly host: VirtualHost;
  /** Its address on the LAN. */
  readonly address: string;
  /** The interface inside the host's namespace. */
  readonly interface: string;
}

export interface LanNetwork {
  /** The namespace holding the LAN's bridge. */
  readonly name: string;
  readonly ports: readonly LanPort[];
  /** Deletes the LAN (its namespace, bridge and links). Idempotent. */
  destroy(): Promise<void>;
}

/**
 * A second network among existing hosts, e.g. a back-end network between servers alongside the
 * front-end one of `createNetwork`: a bridge in a namespace of its own (so the test's namespace has
 * no path onto it) and one link per host with its own address. Hosts keep their first network.
 */
export async function createLan(hosts: readonly VirtualHost[]): Promise<LanNetwork> {
  if (hosts.length < 1 || hosts.length > 200) throw new Error('between 1 and 200 hosts');
  const id = `${process.pid % 100000}${Math.floor(Math.random() * 36 ** 2)
    .toString(36)
    .padStart(2, '0')}`;
  // Only the LAN's own namespaces see this subnet, so it cannot clash with routes elsewhere.
  const subnet = `10.214.${Math.floor(Math.random() * 250)}`;
  const name = `lzs${id}`;
  const bridge = `lzsb${id}`;
  const ports: LanPort[] = [];
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    // Deleting the namespace deletes the bridge and every veth pair with an end in it.
    await run('ip', ['netns', 'del', name]).catch(() => {});
  };
  try {
    await ip('netns', 'add', name);
    await ip('-n', name, 'link', 'add', bridge, 'type', 'bridge');
    await ip('-n', name, 'link', 'set', bridge, 'up');
    for (const [i, host] of hosts.entries()) {
      const inside = `lzl${id}h${i}`;
      const outside = `lzl${id}s${i}`;
      const address = `${subnet}.${i + 2}`;
      await ip(
        '-n',
        name,
        'link',
        'add',
        outside,
        'type',
        'veth',
        'peer',
        'name',
        inside,
        'netns',
        host.name,
      );
      await ip('-n', name, 'link', 'set', outside, 'master', bridge);
      await ip('-n', name, 'link', 'set', outside, 'up');
      await ip('-n', host.name, 'addr', 'add', `${address}/24`, 'dev', inside);
      await ip('-n', host.name, 'link', 'set', inside, 'up');
      ports.push({ host, address, interface: inside });
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  return { name, ports, destroy };
}
