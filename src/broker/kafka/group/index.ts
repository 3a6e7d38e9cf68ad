export { GroupCoordinator, GROUP_DEFAULTS } from './coordinator.js';
export { GroupMetadata, MemberMetadata, IllegalGroupTransition } from './group.js';
export { systemTimer } from './timer.js';
export type * from './types.js';
