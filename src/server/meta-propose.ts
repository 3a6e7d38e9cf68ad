/**
 * Proposing a meta command from this node and reading its replicated outcome:
 * one place for the admin API (which hands rejections to its client) and the
 * broker's store (which turns them into errors).
 */
import type { MetaResult } from '../admin/meta-routes.js';
import type { MetaAgent } from '../meta/agent.js';
import { encodeCommand, type MetaCommand } from '../meta/state/commands.js';

/** Raised when the meta service rejects a command the caller needed. */
export class MetaCommandFailed extends Error {
  constructor(
    readonly kind: string,
    readonly code: string,
    message: string,
  ) {
    super(`meta rejected ${kind}: ${code}: ${message}`);
    this.name = 'MetaCommandFailed';
  }
}

/** The command's outcome, accepted or rejected. */
export async function proposeResult(agent: MetaAgent, cmd: MetaCommand): Promise<MetaResult> {
  return (await agent.client.propose(encodeCommand(cmd))).result as MetaResult;
}

/** Resolves when the command was applied (or rejected with one of the `tolerate` codes); throws MetaCommandFailed otherwise. */
export async function proposeOrThrow(agent: MetaAgent, cmd: MetaCommand, tolerate: readonly string[] = []): Promise<void> {
  const r = await proposeResult(agent, cmd);
  if (!r.ok && !tolerate.includes(r.code)) throw new MetaCommandFailed(cmd.kind, r.code, r.message);
}
