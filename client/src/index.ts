export { createItemsClient, RETRYABLE_CODES, type Item, type ItemCreate, type ItemUpdate, type ItemsClient, type ItemsClientOptions, type ListQuery, type Page } from './client.js';
export { ProblemError, UnexpectedResponseError, type ErrorCode, type FieldError, type Problem, type ValidationProblem } from './errors.js';
export type { components, operations, paths } from './schema.js';
