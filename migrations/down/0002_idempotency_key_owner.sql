-- Reverses 0002_idempotency_key_owner.sql. Keys are global again: where two callers used the same
-- key, only the most recently expiring response is kept.
DELETE FROM "idempotency_keys" AS older USING "idempotency_keys" AS newer
  WHERE older."key" = newer."key" AND (older."expires_at", older."owner") < (newer."expires_at", newer."owner");--> statement-breakpoint
ALTER TABLE "idempotency_keys" DROP CONSTRAINT "idempotency_keys_owner_key_pk";--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY("key");--> statement-breakpoint
ALTER TABLE "idempotency_keys" DROP COLUMN "owner";
