-- Back to 0003: an unknown outcome becomes an in-progress claim (the old code takes it
-- over after 120 s and checks EasyPost first), never 'failed' (taken over at once).
UPDATE idempotency_keys SET status = 'in_progress' WHERE status = 'unknown';
ALTER TABLE idempotency_keys DROP COLUMN lease_until;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_status_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_status_check
    CHECK (status IN ('in_progress', 'completed', 'failed'));
