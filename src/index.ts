/** lazarus: keep long-lived network services alive by lazy state propagation. */
export type { Continuation } from './continuation/continuation.ts';
export { FaultProxy, type FaultProxyOptions } from './faults/fault-proxy.ts';
export * from './pool/index.ts';
export * from './session/index.ts';
export { type ErrorCode, ErrorCodes, isLazarusError, LazarusError } from './wire/errors.ts';
