import { RobustError } from '../common/errors.js';

/** The admin API could not be reached at all (as opposed to answering with an error). */
export class AdminUnreachableError extends RobustError {
  constructor(
    readonly baseUrl: string,
    detail: string,
  ) {
    super(`cannot reach the admin API at ${baseUrl}: ${detail}`, 'admin_unreachable');
  }
}

/** The admin API answered with an error body. */
export class AdminApiError extends RobustError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(`${message} (HTTP ${status}, ${code})`, code);
  }
}

/** Client of a node's admin HTTP API, as robust-ctl and tests use it. */
export class AdminClient {
  readonly baseUrl: string;

  constructor(
    server: string,
    private readonly timeoutMs = 5_000,
  ) {
    this.baseUrl = /^https?:\/\//.test(server) ? server.replace(/\/$/, '') : `http://${server}`;
  }

  async get<T>(path: string): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, { signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      const detail = cause?.code === 'ECONNREFUSED' ? 'connection refused' : (err as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (cause?.code ?? (err as Error).message);
      throw new AdminUnreachableError(this.baseUrl, detail);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AdminApiError(res.status, 'bad_response', `expected JSON from ${path}, got: ${text.slice(0, 80)}`);
    }
    if (!res.ok) {
      const e = (body as { error?: { code?: string; message?: string } }).error;
      throw new AdminApiError(res.status, e?.code ?? 'http_error', e?.message ?? res.statusText);
    }
    return body as T;
  }
}
