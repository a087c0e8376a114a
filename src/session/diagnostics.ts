import diagnostics_channel from 'node:diagnostics_channel';

/**
 * Observability without a logger (as undici does): subscribe to these channels to trace sessions.
 * Messages are plain objects; publishing costs nothing when nobody subscribes.
 */
export const channels = {
  /** { side, sessionId } a session was opened. */
  open: diagnostics_channel.channel('lazarus:session:open'),
  /** { side, sessionId, error } a session's connection broke. */
  break: diagnostics_channel.channel('lazarus:session:break'),
  /** { side, sessionId, retransmitted } a session resumed on a new connection. */
  resume: diagnostics_channel.channel('lazarus:session:resume'),
  /** { side, sessionId, error? } a session ended (error when it failed). */
  close: diagnostics_channel.channel('lazarus:session:close'),
  /** { error, remoteAddress } the server refused a connection or a frame. */
  refused: diagnostics_channel.channel('lazarus:server:refused'),
};
