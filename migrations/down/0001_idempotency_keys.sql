-- Reverses 0001_idempotency_keys.sql. Retries after this rollback are no longer recognised.
DROP TABLE "idempotency_keys";
