/**
 * The worker part of the multipart example (see service.ts): keeps a hash chain and extends it by
 * each job it receives, answering with the new link. Its whole state is the chain's head and length.
 */
import { createHash } from 'node:crypto';
import { servePart } from '../../src/continuation/parts.ts';
import type { Job, Result } from './service.ts';

interface ChainState {
  readonly head: string;
  readonly length: number;
}

let state: ChainState = { head: '0'.repeat(64), length: 0 };
let post: (message: unknown) => void = () => {};

servePart<ChainState>({
  start(restored, send) {
    if (restored) state = restored;
    post = send;
  },
  onMessage(message) {
    const job = message as Job;
    if ('error' in job) {
      post({ seq: job.seq, error: job.error } satisfies Result);
      return;
    }
    let digest = createHash('sha256').update(state.head).update(job.text).digest();
    for (let i = 1; i < job.rounds; i++) digest = createHash('sha256').update(digest).digest();
    state = { head: digest.toString('hex'), length: state.length + 1 };
    post({ seq: job.seq, digest: state.head, link: state.length } satisfies Result);
  },
  snapshot: () => state,
});
