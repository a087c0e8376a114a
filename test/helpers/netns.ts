import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process';
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
  const subnet = `10.213.${(process.pid + counter * 37) % 250}`;
  const bridge = `lzb${id}`;
  const hosts: VirtualHost[] = [];
  const created: string[] = [];
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
    await run('ip', ['link', 'del', bridge]).catch(() => {});
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
