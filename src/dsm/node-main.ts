import { parseArgs } from 'node:util';
import { isLazarusError } from '../wire/errors.ts';
import { parseHostPort, SECRET_ENV } from './launcher.ts';
import { joinCluster } from './runtime.ts';

// A DSM node process: node-main --join host:port [--listen host:port] [--advertise host] [--allow-modules]
// The cluster secret comes from the environment, so it never shows in the process list.
const { values } = parseArgs({
  options: {
    join: { type: 'string' },
    listen: { type: 'string' },
    advertise: { type: 'string' },
    'allow-modules': { type: 'boolean' },
  },
});
try {
  if (!values.join) throw new Error('--join host:port is required');
  const listen = values.listen ? parseHostPort(values.listen, true) : undefined;
  await joinCluster({
    join: parseHostPort(values.join),
    secret: process.env[SECRET_ENV] ?? '',
    ...(listen ? { host: listen.host, port: listen.port } : {}),
    ...(values.advertise ? { advertiseHost: values.advertise } : {}),
    allowModules: values['allow-modules'] === true,
  });
  process.exit(0);
} catch (err) {
  process.stderr.write(`dsm node: ${isLazarusError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
  process.exit(1);
}
