import { RocketmqError } from '../errors.js';

/**
 * A SQL filter expression the broker cannot accept. The client sees
 * ILLEGAL_FILTER_EXPRESSION (as a RocketMQ broker answers a subscription it
 * cannot compile) with the column of the problem, counted from 1.
 */
export class SqlFilterError extends RocketmqError {
  constructor(
    readonly expression: string,
    /** 0-based offset into the expression. */
    readonly position: number,
    readonly detail: string,
  ) {
    super('ILLEGAL_FILTER_EXPRESSION', `SQL filter ${quote(expression)} is not valid at column ${position + 1}: ${detail}`);
  }
}

function quote(expression: string): string {
  return JSON.stringify(expression.length > 120 ? `${expression.slice(0, 120)}…` : expression);
}
