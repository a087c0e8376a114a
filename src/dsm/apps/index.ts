import { isAbsolute, resolve } from 'node:path';
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
 * Names an app the same way on every node: built-in names stay, module paths become file: URLs
 * (relative paths resolved against this process's directory).
 */
export function resolveAppRef(ref: string): string {
  if (BUILTIN_APPS[ref] || ref.startsWith('file:')) return ref;
  if (isAbsolute(ref) || ref.startsWith('./') || ref.startsWith('../'))
    return pathToFileURL(resolve(ref)).href;
  throw createError(
    ErrorCodes.INVALID_ARGUMENT,
    `unknown DSM app ${ref} (built-in: ${Object.keys(BUILTIN_APPS).join(', ')}; or a module path)`,
  );
}

/**
 * Finds an app by built-in name, or imports a module (path or file: URL) exporting `app`. The
 * module must not be the one that starts the run (importing itself would wait on itself).
 */
export async function loadApp(ref: string): Promise<DsmApp> {
  const resolved = resolveAppRef(ref);
  const builtin = BUILTIN_APPS[resolved];
  if (builtin) return builtin;
  const mod = (await import(resolved)) as { app?: DsmApp };
  if (!mod.app || typeof mod.app.run !== 'function') {
    throw createError(ErrorCodes.INVALID_ARGUMENT, `module ${ref} does not export a DSM app as \`app\``);
  }
  return mod.app;
}
