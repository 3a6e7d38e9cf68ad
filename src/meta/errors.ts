import { RobustError } from '../common/errors.js';

/** This meta node is not the leader; `leaderId` is who is (0 when unknown, e.g. mid-election). */
export class NotLeaderError extends RobustError {
  constructor(readonly leaderId: number) {
    super(leaderId ? `not the meta leader (leader is node ${leaderId})` : 'no meta leader right now (election in progress)', 'not_leader');
  }
}

/** The proposal lost its slot in the log to another leader's entry: it did not commit. */
export class ProposalDroppedError extends RobustError {
  constructor(readonly index: number) {
    super(`proposal at index ${index} was replaced by a new leader; it did not take effect`, 'proposal_dropped');
  }
}

/** No outcome within the time limit: the write may or may not take effect later. */
export class MetaTimeoutError extends RobustError {
  constructor(what: string, ms: number) {
    super(`${what} did not complete within ${ms} ms (the outcome is unknown)`, 'meta_timeout');
  }
}

export class MetaStoppedError extends RobustError {
  constructor() {
    super('the meta service is stopping', 'meta_stopped');
  }
}

/** A membership or leadership request that Raft refused (e.g. another change is in progress). */
export class MembershipError extends RobustError {
  constructor(message: string, code = 'membership_refused') {
    super(message, code);
  }
}
