import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { type ErrorKind, LimitError, StreamhubError } from '../core/errors.js';

/** An error the client should see, in the API's error shape `{"error": {"code", "message"}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }

  /** The whole HTTP/1.1 response, closing the connection: for a socket no server answers on. */
  toHttpResponse(): string {
    const body = JSON.stringify(this.toJSON());
    const headers = {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      Connection: 'close',
      ...this.headers,
    };
    const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
    return `HTTP/1.1 ${this.status} ${STATUS_CODES[this.status]}\r\n${head.join('')}\r\n${body}`;
  }
}

/** Fastify's own errors for bad requests, in our vocabulary. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_content_length',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_VALIDATION: 'invalid_request',
  FST_ERR_BAD_URL: 'invalid_url',
  FST_ERR_MAX_PARAM_LENGTH: 'uri_too_long',
};

/** Fastify's messages for these quote the whole URL back; a fixed one says enough. */
const FIXED_MESSAGES: Record<string, string> = {
  FST_ERR_BAD_URL: 'the URL is not validly percent-encoded',
  FST_ERR_MAX_PARAM_LENGTH: 'a path segment of the URL is too long',
};

const STATUS_BY_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
};

export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof StreamhubError) {
    const headers: Record<string, string> =
      error instanceof LimitError
        ? { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) }
        : {};
    return new ApiError(STATUS_BY_KIND[error.kind], error.code, error.message, headers);
  }
  if (!(error instanceof Error))
    return new ApiError(500, 'internal_error', 'internal server error');
  const fastifyError = error as FastifyError;
  const status = fastifyError.statusCode ?? 500;
  if (status >= 500) return new ApiError(500, 'internal_error', 'internal server error');
  if (error instanceof SyntaxError)
    return new ApiError(400, 'invalid_json', 'body is not valid JSON');
  const code = FASTIFY_CODES[fastifyError.code] ?? 'bad_request';
  return new ApiError(status, code, FIXED_MESSAGES[fastifyError.code] ?? fastifyError.message);
}

/**
 * Logs a failure of ours. An outage or an overload answers every request with 503: one line
 * each, not a stack trace each.
 */
export function logFailure(request: FastifyRequest, error: unknown, apiError: ApiError): void {
  if (apiError.status === 503) request.log.warn({ code: apiError.code }, apiError.message);
  else if (apiError.status >= 500) request.log.error({ err: error }, 'request failed');
}

/** Every failure answers in the error shape of docs/api.md §0; a stack trace never leaves the process. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    logFailure(request, error, apiError);
    reply.code(apiError.status).headers(apiError.headers).send(apiError.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError(
      404,
      'not_found',
      `no route for ${request.method} ${request.url.split('?')[0]}`,
    );
    reply.code(404).send(error.toJSON());
  });
}
