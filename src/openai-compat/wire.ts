/**
 * The API's error shape (docs/api.md §0) plus OpenAI's `type` and `param`, which the SDKs expose as
 * `error.type` / `error.param`. Used for HTTP errors and for the in-stream error chunk alike.
 */
export interface OpenAiErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly type: string;
    readonly param: string | null;
  };
}

export function errorBody(
  code: string,
  message: string,
  type: string,
  param: string | null = null,
): OpenAiErrorBody {
  return { error: { code, message, type, param } };
}
