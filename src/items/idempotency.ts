import { createHash } from 'node:crypto';
import { ServiceError } from '../errors.js';
import type { ItemCreate } from './schemas.js';

/**
 * `Idempotency-Key` on POST /items: a retry of a creation gets the original response instead of a
 * second item. The key is claimed in the same statement that inserts the item (see insertItems);
 * this module says what a claim is and what a stored response means for a request.
 */

export interface IdempotencyClaim {
  /** Whose key it is: a fingerprint of the caller's API key, or '' when the service takes none. */
  owner: string;
  key: string;
  /** What the key stands for: a retry must send the same request. */
  requestHash: string;
  ttlSeconds: number;
}

/** The same key sent with another request: a client bug, never silently replayed. */
export class IdempotencyKeyReusedError extends ServiceError {
  constructor(key: string) {
    super(422, 'IDEMPOTENCY_KEY_REUSED', `The Idempotency-Key "${key}" was already used with a different request`);
  }
}

export function idempotencyClaim(key: string, owner: string, body: ItemCreate, ttlSeconds: number): IdempotencyClaim {
  return { owner, key, requestHash: requestHash(body), ttlSeconds };
}

/** The request a key stands for: the validated body (unknown fields already dropped). */
function requestHash(body: ItemCreate): string {
  return createHash('sha256')
    .update(JSON.stringify([body.name, body.description ?? null]))
    .digest('hex');
}

/** Where two requests hold the same claim, the later one waits for the earlier one's outcome. */
export function claimIdentity(claim: IdempotencyClaim): string {
  return `${claim.owner}\u0000${claim.key}`;
}

/** How often expired keys are deleted (several workers doing so at once is harmless). */
export const PURGE_INTERVAL_MS = 10 * 60_000;
