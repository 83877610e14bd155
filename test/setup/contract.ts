import { afterAll, afterEach } from 'vitest';
import { takeViolations } from '../helpers/contract.js';

/**
 * Every test file runs this first: a test whose app sent a response the OpenAPI document does not
 * describe fails, naming the response (see test/helpers/contract.ts). Responses sent outside a
 * test (in beforeAll, say) fail the file at its end.
 */
function failOnViolations(when: string): void {
  const violations = takeViolations();
  if (violations.length > 0) {
    throw new Error(`${when}, the service gave ${violations.length} response(s) that its OpenAPI document does not describe:\n${violations.join('\n')}`);
  }
}

afterEach(() => failOnViolations('In this test'));
afterAll(() => failOnViolations('In this file, outside its tests'));
