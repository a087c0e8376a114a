import { createError, ErrorCodes } from '../wire/errors.ts';
import { DEFAULT_MAX_FRAME_SIZE } from '../wire/frame.ts';
import { DEFAULT_TUNING, type SessionTuning } from './session-stream.ts';

/** Options shared by clients and servers. All times in ms, sizes in bytes. */
export interface CommonOptions {
  /** How long a broken session may take to resume before it fails (ERR_LZ_RESUME_TIMEOUT). Default 30 s. */
  resumeTimeout?: number;
  /** How long a connection may take to finish its handshake. Default 5 s. */
  handshakeTimeout?: number;
  /**
   * Ping the peer after this long without hearing from it. Default 5 s. A client whose policies read
   * the RTT pings on a fixed period instead (the shorter of this and what the policy asks for).
   */
  keepaliveInterval?: number;
  /** Treat the connection as broken after this long without receiving anything. Default 15 s. */
  keepaliveTimeout?: number;
  /** Unacknowledged bytes held for retransmission before writes push back. Default 8 MiB. */
  maxUnacked?: number;
  /** Largest frame body accepted from the peer. Default 1 MiB. */
  maxFrameSize?: number;
  /** Fail the session after this long without data either way (ERR_LZ_IDLE_TIMEOUT). Default none. */
  idleTimeout?: number;
  /** As net.Socket: keep the writable side open after the readable side ended. Default false. */
  allowHalfOpen?: boolean;
  /** Disable Nagle on the underlying TCP connections. Default true. */
  noDelay?: boolean;
}

export interface ResolvedCommon {
  readonly tuning: SessionTuning;
  readonly resumeTimeout: number;
  readonly handshakeTimeout: number;
  readonly maxFrameSize: number;
}

/** `value`, or `fallback` when absent; anything but a positive finite number is INVALID_ARGUMENT. */
export function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw createError(ErrorCodes.INVALID_ARGUMENT, `${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

export function resolveCommon(o: CommonOptions): ResolvedCommon {
  const maxFrameSize = positive('maxFrameSize', o.maxFrameSize, DEFAULT_MAX_FRAME_SIZE);
  if (maxFrameSize < 1024)
    throw createError(ErrorCodes.INVALID_ARGUMENT, 'maxFrameSize must be at least 1024');
  const maxUnacked = positive('maxUnacked', o.maxUnacked, DEFAULT_TUNING.maxUnacked);
  const interval = positive('keepaliveInterval', o.keepaliveInterval, DEFAULT_TUNING.keepalive.interval);
  const timeout = positive('keepaliveTimeout', o.keepaliveTimeout, DEFAULT_TUNING.keepalive.timeout);
  if (timeout <= interval) {
    throw createError(ErrorCodes.INVALID_ARGUMENT, 'keepaliveTimeout must be longer than keepaliveInterval');
  }
  const tuning: SessionTuning = {
    maxUnacked,
    ackEvery: Math.max(1, Math.min(DEFAULT_TUNING.ackEvery, Math.floor(maxUnacked / 4))),
    ackDelay: DEFAULT_TUNING.ackDelay,
    maxDataFrame: Math.min(DEFAULT_TUNING.maxDataFrame, maxFrameSize - 64),
    keepalive: { interval, timeout, quietFor: interval },
    idleTimeout: o.idleTimeout === undefined ? undefined : positive('idleTimeout', o.idleTimeout, 0),
    allowHalfOpen: o.allowHalfOpen ?? DEFAULT_TUNING.allowHalfOpen,
    noDelay: o.noDelay ?? DEFAULT_TUNING.noDelay,
  };
  return {
    tuning,
    resumeTimeout: positive('resumeTimeout', o.resumeTimeout, 30_000),
    handshakeTimeout: positive('handshakeTimeout', o.handshakeTimeout, 5000),
    maxFrameSize,
  };
}
