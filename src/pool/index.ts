export { freePorts } from './free-ports.ts';
export { type Member, type Membership, StaticMembership } from './membership.ts';
export { rttDegraded, serverAdvice, stall, throughputDegraded } from './policies.ts';
export { type ContinuationSource, createPool, Pool, type PoolOptions, requestDrain } from './pool.ts';
