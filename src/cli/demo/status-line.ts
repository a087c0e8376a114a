import { formatBytes, formatSeconds, table } from './format.ts';
import type { ClientStatus } from './messages.ts';

export interface ProxyCounts {
  readonly connections: number;
  readonly breaks: Readonly<Record<'reset' | 'close' | 'stall', number>>;
}

/**
 * The live view: one line per session plus the proxy's counts. On a TTY it is redrawn in place;
 * elsewhere (a pipe, a CI log) a plain snapshot is printed every few seconds instead.
 */
export class StatusBoard {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #sessions: (ClientStatus | undefined)[];
  readonly #startedAt = Date.now();
  #drawnLines = 0;
  // The first plain snapshot comes after a few seconds, when there is something to show.
  #lastPlain = Date.now();

  constructor(out: NodeJS.WriteStream, clients: number) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    this.#sessions = Array.from({ length: clients }, () => undefined);
  }

  /** How often draw() should be called. */
  get interval(): number {
    return this.#tty ? 200 : 1000;
  }

  update(status: ClientStatus): void {
    this.#sessions[status.index] = status;
  }

  draw(proxy: ProxyCounts): void {
    const lines = this.#lines(proxy);
    if (this.#tty) {
      // Back to the first line drawn last time, then overwrite every line.
      const up = this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}F` : '';
      this.#out.write(`${up}${lines.map((l) => `\x1b[2K${l}\n`).join('')}`);
      this.#drawnLines = lines.length;
      return;
    }
    const now = Date.now();
    if (now - this.#lastPlain < 5000) return;
    this.#lastPlain = now;
    this.#out.write(`${lines.join('\n')}\n`);
  }

  #lines(proxy: ProxyCounts): string[] {
    const rows = this.#sessions.map((s, i) => {
      if (!s) return [`#${i + 1}`, '', 'starting'];
      return [
        `#${i + 1}`,
        s.sessionId?.slice(0, 12) ?? '',
        s.state,
        `sent ${formatBytes(s.sent)}`,
        `recv ${formatBytes(s.received)}`,
        `resumes ${s.reconnects}`,
      ];
    });
    const b = proxy.breaks;
    return [
      ...table(rows).map((l) => `  ${l}`),
      `  ${formatSeconds(Date.now() - this.#startedAt)}  proxy: ${proxy.connections} connections, ` +
        `${b.reset + b.close + b.stall} breaks (reset ${b.reset}, close ${b.close}, stall ${b.stall})`,
    ];
  }
}
