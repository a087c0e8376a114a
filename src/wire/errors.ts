/**
 * Every error lazarus raises is a LazarusError with a stable `code` (ERR_LZ_*), so callers can branch
 * on the code and never on the message. The original error, if any, is kept as `cause`.
 */

export const ErrorCodes = {
  /** A frame announced a length above the receiver's maximum. */
  FRAME_TOO_LARGE: 'ERR_LZ_FRAME_TOO_LARGE',
  /** The connection ended in the middle of a frame. */
  FRAME_TRUNCATED: 'ERR_LZ_FRAME_TRUNCATED',
  /** A frame carried a type byte this protocol does not know. */
  UNKNOWN_FRAME_TYPE: 'ERR_LZ_UNKNOWN_FRAME_TYPE',
  /** A frame's payload did not parse (field out of bounds, bad length, trailing bytes). */
  MALFORMED_FRAME: 'ERR_LZ_MALFORMED_FRAME',
  /** A hello did not start with the lazarus magic. */
  BAD_MAGIC: 'ERR_LZ_BAD_MAGIC',
  /** A hello announced a protocol version this side does not speak. */
  UNSUPPORTED_VERSION: 'ERR_LZ_UNSUPPORTED_VERSION',
  /** A well-formed frame arrived where the protocol does not allow it. */
  PROTOCOL: 'ERR_LZ_PROTOCOL',
  /** A ticket failed verification (forged, truncated, or from another pool). */
  BAD_TICKET: 'ERR_LZ_BAD_TICKET',
  /** A proof of the session secret was wrong or replayed. */
  AUTH_FAILED: 'ERR_LZ_AUTH_FAILED',
  /** The session named by a ticket is not known to this server. */
  UNKNOWN_SESSION: 'ERR_LZ_UNKNOWN_SESSION',
  /** A resume claimed an offset outside what the peer could have received. */
  STALE_OFFSET: 'ERR_LZ_STALE_OFFSET',
  /** A broken session could not be resumed within its resume timeout. */
  RESUME_TIMEOUT: 'ERR_LZ_RESUME_TIMEOUT',
  /** A session saw no traffic for its idle timeout. */
  IDLE_TIMEOUT: 'ERR_LZ_IDLE_TIMEOUT',
  /** The peer sent nothing (not even a keepalive) for the keepalive timeout: the path stalled. */
  KEEPALIVE_TIMEOUT: 'ERR_LZ_KEEPALIVE_TIMEOUT',
  /** A connection or handshake did not complete in time. */
  HANDSHAKE_TIMEOUT: 'ERR_LZ_HANDSHAKE_TIMEOUT',
  /** The first connection to a server failed. */
  CONNECT_FAILED: 'ERR_LZ_CONNECT_FAILED',
  /** The peer destroyed the session. */
  SESSION_ABORTED: 'ERR_LZ_SESSION_ABORTED',
  /** The session was already closed by both sides. */
  SESSION_CLOSED: 'ERR_LZ_SESSION_CLOSED',
  /** The operation was cancelled through an AbortSignal. */
  ABORTED: 'ERR_LZ_ABORTED',
  /** An argument given to the API was invalid. */
  INVALID_ARGUMENT: 'ERR_LZ_INVALID_ARGUMENT',
  /** A restored handler's replayed output differed from the logged output: it is not deterministic. */
  DIVERGENCE: 'ERR_LZ_DIVERGENCE',
  /** A session could not be moved to another server. */
  MIGRATION_FAILED: 'ERR_LZ_MIGRATION_FAILED',
  /** The server that owns a session did not answer a pull in time. */
  ORIGIN_UNREACHABLE: 'ERR_LZ_ORIGIN_UNREACHABLE',
  /** The session has moved to another owner (this one is stale). */
  SESSION_MOVED: 'ERR_LZ_SESSION_MOVED',
  /** A pool peer failed authentication (wrong pool secret). */
  PEER_AUTH_FAILED: 'ERR_LZ_PEER_AUTH_FAILED',
  /** The server is shutting down and takes no new sessions. */
  SERVER_CLOSING: 'ERR_LZ_SERVER_CLOSING',
  /** A DSM message named a page, lock, node or range outside the shared space. */
  DSM_OUT_OF_RANGE: 'ERR_LZ_DSM_OUT_OF_RANGE',
  /** A DSM diff did not fit its page (bad run offset or length). */
  DSM_BAD_DIFF: 'ERR_LZ_DSM_BAD_DIFF',
  /** A DSM peer disconnected or misbehaved before the computation ended. */
  DSM_PEER_LOST: 'ERR_LZ_DSM_PEER_LOST',
  /** The DSM application threw, or its result differed from the sequential run. */
  DSM_APP_FAILED: 'ERR_LZ_DSM_APP_FAILED',
  /** A DSM checkpoint file is truncated, corrupt, or belongs to another node or layout. */
  DSM_BAD_CHECKPOINT: 'ERR_LZ_DSM_BAD_CHECKPOINT',
  /** A recovering DSM node re-executed differently from its first run (non-deterministic app?). */
  DSM_DIVERGED: 'ERR_LZ_DSM_DIVERGED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const knownCodes: ReadonlySet<string> = new Set(Object.values(ErrorCodes));

export class LazarusError extends Error {
  override readonly name = 'LazarusError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Builds a LazarusError; the one place errors are made, so code and message stay together. */
export function createError(code: ErrorCode, message: string, cause?: unknown): LazarusError {
  return cause === undefined ? new LazarusError(code, message) : new LazarusError(code, message, { cause });
}

/**
 * A LazarusError without a stack trace, for what a peer did rather than a fault of this process (its
 * connection ended, it aborted the session): those happen per connection, the trace would only show
 * an event callback, and capturing it (streams read it on destroy) costs more than the rest of the
 * close, many times more with source maps on.
 */
export function peerEventError(code: ErrorCode, message: string, cause?: unknown): LazarusError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return createError(code, message, cause);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function isLazarusError(err: unknown): err is LazarusError {
  return err instanceof LazarusError;
}

/** Maps a code received from a peer back to a known code; anything else is a protocol error. */
export function codeFromWire(code: string): ErrorCode {
  return knownCodes.has(code) ? (code as ErrorCode) : ErrorCodes.PROTOCOL;
}
