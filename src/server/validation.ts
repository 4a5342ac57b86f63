import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';

const SHARED = { useDefaults: true, removeAdditional: false, allErrors: false } as const;

/**
 * JSON bodies are validated as sent: Fastify's default Ajv coerces types everywhere, so
 * `{"session_id": 123}` became the string "123" and `{"content": 1}` started a chat. The URL's
 * parts (query, params, headers) are text by nature and keep their coercion (`?limit=10`).
 */
const bodies = new Ajv({ ...SHARED, coerceTypes: false });
const urlParts = new Ajv({ ...SHARED, coerceTypes: 'array' });

export function installValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodies : urlParts).compile(schema),
  );
}
