import { parseArgs } from 'node:util';
import { ErrorCodes, isLazarusError } from '../wire/errors.ts';
import { JOIN_FAILED_EXIT, parseHostPort, SECRET_ENV } from './launcher.ts';
import { joinCluster } from './runtime.ts';
import { dsmChannel } from './stats.ts';

// A DSM node process: node-main --join host:port [--listen host:port] [--advertise host] [--allow-modules]
// [--id n [--rejoin]] (FT runs: the launcher names each node, and restarts a failed one with --rejoin)
// The cluster secret comes from the environment, so it never shows in the process list.
const { values } = parseArgs({
  options: {
    join: { type: 'string' },
    listen: { type: 'string' },
    advertise: { type: 'string' },
    'allow-modules': { type: 'boolean' },
    id: { type: 'string' },
    rejoin: { type: 'boolean' },
  },
});
// Protocol events on stderr, for debugging a run by hand.
if (process.env.LAZARUS_DSM_DEBUG) {
  dsmChannel.subscribe((e) => process.stderr.write(`[dsm ${process.pid}] ${JSON.stringify(e)}\n`));
}
try {
  if (!values.join) throw new Error('--join host:port is required');
  const listen = values.listen ? parseHostPort(values.listen, true) : undefined;
  await joinCluster({
    join: parseHostPort(values.join),
    secret: process.env[SECRET_ENV] ?? '',
    ...(listen ? { host: listen.host, port: listen.port } : {}),
    ...(values.advertise ? { advertiseHost: values.advertise } : {}),
    allowModules: values['allow-modules'] === true,
    ...(values.id !== undefined ? { id: Number(values.id) } : {}),
    rejoin: values.rejoin === true,
    // A keeper (keeper.ts) that started this process learns its id, to restart it as that node, and
    // when its app's work is in (a restart that then finds the run over is no failure).
    onStart: (info) => process.send?.({ type: 'started', ...info }),
    onAppDone: () => process.send?.({ type: 'app-done' }),
  });
  process.exit(0);
} catch (err) {
  process.stderr.write(`dsm node: ${isLazarusError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
  // 2: the coordinator could not be joined at all (the run is over, or refused us): no use restarting.
  process.exit(isLazarusError(err) && err.code === ErrorCodes.CONNECT_FAILED ? JOIN_FAILED_EXIT : 1);
}
