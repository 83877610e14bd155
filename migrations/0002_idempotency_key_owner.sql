-- Idempotency keys belong to the caller that sent them: (owner, key) replaces key as the primary key.
-- Keys stored before have no owner (''): they still answer callers without an API key, and expire as usual.
ALTER TABLE "idempotency_keys" ADD COLUMN "owner" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "idempotency_keys" DROP CONSTRAINT "idempotency_keys_pkey";--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_owner_key_pk" PRIMARY KEY("owner","key");
