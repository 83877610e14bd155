/**
 * A migration command refused or failed for a reason the operator can act on. The CLI prints its
 * message alone (no stack), then exits 1.
 */
export class MigrationError extends Error {
  override name = 'MigrationError';
}
