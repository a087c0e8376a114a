/** Public API of the software DSM (home-based lazy release consistency). */
export {
  type CheckResult,
  checkClose,
  checkExact,
  type DsmApp,
  type DsmParams,
  type DsmResult,
  seededRandom,
} from './app.ts';
export { BUILTIN_APPS, loadApp } from './apps/index.ts';
export type { DsmContext } from './context.ts';
export type { GcMode } from './ft/core.ts';
export type { CheckpointPolicy } from './ft/policy.ts';
export {
  type AppRun,
  type ClusterOptions,
  type FtOptions,
  runApp,
  runCluster,
  runSequential,
  SECRET_ENV,
} from './launcher.ts';
export { blockOwner, blockRange, DEFAULT_PAGE_SIZE, type Placement, type RegionSpec } from './pages.ts';
export type { DsmHooks, Flush } from './protocol.ts';
export {
  type ClusterRun,
  type Coordinator,
  type CoordinatorOptions,
  type JoinOptions,
  joinCluster,
  type ProgressEvent,
  startCoordinator,
} from './runtime.ts';
export { type DsmStats, dsmChannel, type FtStats } from './stats.ts';
