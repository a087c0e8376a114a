import { formatSeconds } from './format.ts';

/**
 * The live view: a block of lines at the bottom of the terminal, redrawn in place, with an event log
 * scrolling above it. Elsewhere (a pipe, a CI log) events are printed as they happen and a plain
 * snapshot of the block every few seconds.
 */
export class StatusBoard {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #startedAt = Date.now();
  #lines: readonly string[] = [];
  #drawnLines = 0;
  // The first plain snapshot comes after a few seconds, when there is something to show.
  #lastPlain = Date.now();

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  /** How often draw() should be called. */
  get interval(): number {
    return this.#tty ? 200 : 1000;
  }

  /** Time since the board started, as shown in front of events. */
  get elapsed(): string {
    return formatSeconds(Date.now() - this.#startedAt).padStart(7);
  }

  /** Adds a line to the event log. */
  log(line: string): void {
    const text = `${this.elapsed}  ${line}\n`;
    if (!this.#tty) {
      this.#out.write(text);
      return;
    }
    // Erase the block, print the event where it was, and draw the block again below it.
    this.#out.write(`${this.#up()}\x1b[J${text}`);
    this.#drawnLines = 0;
    this.#render();
  }

  /** Replaces the block; `force` prints it even off a TTY (the final state). */
  draw(lines: readonly string[], force = false): void {
    this.#lines = lines;
    if (this.#tty) {
      this.#render();
      return;
    }
    const now = Date.now();
    if (!force && now - this.#lastPlain < 5000) return;
    this.#lastPlain = now;
    this.#out.write(`${lines.join('\n')}\n`);
  }

  #render(): void {
    // Back to the first line drawn last time, overwrite every line, erase what a longer block left.
    this.#out.write(`${this.#up()}${this.#lines.map((l) => `\x1b[2K${l}\n`).join('')}\x1b[J`);
    this.#drawnLines = this.#lines.length;
  }

  #up(): string {
    return this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}F` : '';
  }
}
