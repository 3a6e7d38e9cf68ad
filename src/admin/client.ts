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

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      const detail = cause?.code === 'ECONNREFUSED' ? 'connection refused' : (err as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (cause?.code ?? (err as Error).message);
      throw new AdminUnreachableError(this.baseUrl, detail);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new AdminApiError(res.status, 'bad_response', `expected JSON from ${path}, got: ${text.slice(0, 80)}`);
    }
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string } }).error;
      throw new AdminApiError(res.status, e?.code ?? 'http_error', e?.message ?? res.statusText);
    }
    return parsed as T;
  }
}
