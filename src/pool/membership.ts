import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createError, ErrorCodes } from '../wire/errors.ts';

/** A server of the pool: where clients connect (port) and where peers connect (peerPort). */
export interface Member {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly peerPort: number;
}

/**
 * Who is in the pool. The static list is the embedded default; another source (a registry, DNS, a
 * gossip layer) plugs in by implementing this and emitting 'change'.
 */
export interface Membership {
  members(): readonly Member[];
  get(id: string): Member | undefined;
  on(event: 'change', listener: (members: readonly Member[]) => void): this;
  off(event: 'change', listener: (members: readonly Member[]) => void): this;
}

export class StaticMembership extends EventEmitter implements Membership {
  #members: readonly Member[];

  constructor(members: readonly Member[]) {
    super();
    this.#members = validateMembers(members);
  }

  /** Reads `[{ "id", "host", "port", "peerPort" }, ...]` (or `{ "members": [...] }`) from a JSON file. */
  static fromFile(path: string): StaticMembership {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw createError(ErrorCodes.INVALID_ARGUMENT, `cannot read pool file ${path}`, err);
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { members?: unknown } | null)?.members;
    if (!Array.isArray(list))
      throw createError(ErrorCodes.INVALID_ARGUMENT, `${path}: expected a list of members`);
    return new StaticMembership(list as Member[]);
  }

  members(): readonly Member[] {
    return this.#members;
  }

  get(id: string): Member | undefined {
    return this.#members.find((m) => m.id === id);
  }

  /** Replaces the list (e.g. after an operator edit) and tells listeners. */
  set(members: readonly Member[]): void {
    this.#members = validateMembers(members);
    this.emit('change', this.#members);
  }
}

function validateMembers(members: readonly Member[]): readonly Member[] {
  const ids = new Set<string>();
  for (const m of members) {
    const port = (p: unknown) => Number.isInteger(p) && (p as number) > 0 && (p as number) < 65536;
    if (typeof m?.id !== 'string' || m.id.length === 0 || m.id.length > 200) {
      throw createError(ErrorCodes.INVALID_ARGUMENT, 'every pool member needs an id (1-200 characters)');
    }
    if (typeof m.host !== 'string' || !port(m.port) || !port(m.peerPort)) {
      throw createError(ErrorCodes.INVALID_ARGUMENT, `pool member ${m.id}: needs host, port and peerPort`);
    }
    if (ids.has(m.id)) throw createError(ErrorCodes.INVALID_ARGUMENT, `pool member ${m.id} is listed twice`);
    ids.add(m.id);
  }
  return Object.freeze(
    members.map((m) => Object.freeze({ id: m.id, host: m.host, port: m.port, peerPort: m.peerPort })),
  );
}
