import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createError, ErrorCodes } from '../../wire/errors.ts';
import type { DsmApp } from '../app.ts';
import { lu } from './lu.ts';
import { matmul } from './matmul.ts';
import { radix } from './radix.ts';
import { sor } from './sor.ts';
import { water } from './water.ts';

/** The built-in applications, by name. */
export const BUILTIN_APPS: Readonly<Record<string, DsmApp>> = { sor, lu, water, matmul, radix };

/**
 * Finds an app by built-in name, or imports a module (absolute path or file: URL) exporting `app`.
 * Joined nodes load what the (authenticated) coordinator names, so only trusted clusters should
 * use module paths.
 */
export async function loadApp(ref: string): Promise<DsmApp> {
  const builtin = BUILTIN_APPS[ref];
  if (builtin) return builtin;
  if (!ref.startsWith('file:') && !isAbsolute(ref)) {
    throw createError(
      ErrorCodes.INVALID_ARGUMENT,
      `unknown DSM app ${ref} (built-in: ${Object.keys(BUILTIN_APPS).join(', ')})`,
    );
  }
  const mod = (await import(ref.startsWith('file:') ? ref : pathToFileURL(ref).href)) as { app?: DsmApp };
  if (!mod.app || typeof mod.app.run !== 'function') {
    throw createError(ErrorCodes.INVALID_ARGUMENT, `module ${ref} does not export a DSM app as \`app\``);
  }
  return mod.app;
}
