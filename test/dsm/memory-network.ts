import { decodeMessage, encodeMessage, type ProtocolMessage } from '../../src/dsm/messages.ts';
import { type Layout, PageTable } from '../../src/dsm/pages.ts';
import { DsmProtocol } from '../../src/dsm/protocol.ts';
import { WriteTracker } from '../../src/dsm/twins.ts';
import type { LazarusError } from '../../src/wire/errors.ts';

/**
 * N protocol instances joined by an in-memory network: FIFO per link like TCP, but the next link to
 * deliver is picked by a seeded random choice, so tests explore message interleavings. Messages go
 * through the real codec.
 */
export class MemoryNetwork {
  readonly nodes: TestNode[];
  readonly errors: { node: number; err: LazarusError }[] = [];
  /** Messages sent, by type. */
  readonly sent = new Map<string, number>();
  readonly #links = new Map<string, { from: number; to: number; queue: Buffer[] }>();
  #seed: number;

  constructor(layout: Layout, count: number, seed: number) {
    this.#seed = seed >>> 0 || 1;
    this.nodes = Array.from({ length: count }, (_, me) => {
      const protocol = new DsmProtocol({
        me,
        nodes: count,
        pages: new PageTable(layout, me),
        transport: { send: (to, msg) => this.#enqueue(me, to, msg) },
      });
      return new TestNode(protocol);
    });
  }

  #enqueue(from: number, to: number, msg: ProtocolMessage): Buffer {
    const key = `${from}>${to}`;
    let link = this.#links.get(key);
    if (!link) {
      link = { from, to, queue: [] };
      this.#links.set(key, link);
    }
    const frame = encodeMessage(msg);
    link.queue.push(frame);
    this.sent.set(msg.type, (this.sent.get(msg.type) ?? 0) + 1);
    return frame;
  }

  #random(n: number): number {
    this.#seed ^= this.#seed << 13;
    this.#seed ^= this.#seed >>> 17;
    this.#seed ^= this.#seed << 5;
    return (this.#seed >>> 0) % n;
  }

  /** Delivers messages in random link order until `done` settles; rejects if the network stalls. */
  async run<T>(done: Promise<T>): Promise<T> {
    let settled = false;
    const result = done.finally(() => {
      settled = true;
    });
    result.catch(() => {});
    while (!settled) {
      const busy = [...this.#links.values()].filter((l) => l.queue.length > 0);
      if (busy.length === 0) {
        await new Promise((r) => setImmediate(r));
        if (!settled && [...this.#links.values()].every((l) => l.queue.length === 0)) {
          throw new Error('network idle but the programs did not finish (deadlock)');
        }
        continue;
      }
      const link = busy[this.#random(busy.length)]!;
      const frame = link.queue.shift()!;
      const node = this.nodes[link.to]!;
      try {
        node.protocol.receive(link.from, decodeMessage(frame[4]!, frame.subarray(5)) as ProtocolMessage);
      } catch (err) {
        this.errors.push({ node: link.to, err: err as LazarusError });
        throw err;
      }
      await new Promise((r) => setImmediate(r));
    }
    return result;
  }
}

/** The app-side view of one node, async (no worker): explicit read/write over byte ranges. */
export class TestNode {
  readonly protocol: DsmProtocol;
  readonly tracker: WriteTracker;

  constructor(protocol: DsmProtocol) {
    this.protocol = protocol;
    this.tracker = new WriteTracker(protocol.pages);
  }

  get pages(): PageTable {
    return this.protocol.pages;
  }

  f64(offset: number, length: number): Float64Array {
    return new Float64Array(this.pages.data.buffer, offset, length);
  }

  async read(view: ArrayBufferView): Promise<void> {
    const { first, last } = this.pages.pagesOf(view.byteOffset, view.byteLength);
    const pages: number[] = [];
    for (let p = first; p <= last; p++) pages.push(p);
    await this.protocol.fetch(pages);
  }

  async write(view: ArrayBufferView): Promise<void> {
    await this.read(view);
    const { first, last } = this.pages.pagesOf(view.byteOffset, view.byteLength);
    for (let p = first; p <= last; p++) this.tracker.markWrite(p);
  }

  acquire(lock: number): Promise<void> {
    return this.protocol.acquire(lock, this.tracker.flush());
  }

  release(lock: number): Promise<void> {
    return this.protocol.release(lock, this.tracker.flush());
  }

  /** A barrier after which `want` is readable (pushed by the homes). */
  barrier(...want: ArrayBufferView[]): Promise<void> {
    const pages: number[] = [];
    for (const view of want) {
      const { first, last } = this.pages.pagesOf(view.byteOffset, view.byteLength);
      for (let p = first; p <= last; p++) pages.push(p);
    }
    return this.protocol.barrier(this.tracker.flush(), pages);
  }
}
