import { status } from '@grpc/grpc-js';
import { RobustError } from '../common/errors.js';

/** An error a gRPC handler returns to its caller with a specific status code. */
export class RpcError extends RobustError {
  constructor(
    readonly status: status,
    message: string,
  ) {
    super(message, `rpc_${status}`);
  }
}

/** A call to another node failed; carries the address and method for the log line. */
export class RpcCallError extends RobustError {
  constructor(
    readonly address: string,
    readonly method: string,
    readonly status: status | undefined,
    detail: string,
  ) {
    super(`${method} to ${address} failed: ${detail}`, 'rpc_call_failed');
  }
}
