-- 0004_idempotency_lease: a keyed buy is never made twice (issue 18).
--
-- * status 'unknown': EasyPost timed out, the connection broke mid-answer or it answered
--   5xx.  The shipment may or may not have been bought.  Unlike 'failed' (EasyPost
--   certainly did not buy: 429, nothing sent), an unknown outcome is not taken over at once.
-- * lease_until: a claim (in_progress) or an unknown outcome belongs to its request until
--   this time, set at the claim to now() + EASYPOST_TIMEOUT_MS + GATEWAY_BUY_LEASE_MARGIN_MS:
--   past the longest EasyPost call the claiming request can still be making.  Only then may
--   another request take the key over, and it checks EasyPost before buying.  Rows written
--   before this migration have no lease: they keep the old rule (updated_at + 120 s).
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_status_check;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_status_check
    CHECK (status IN ('in_progress', 'completed', 'failed', 'unknown'));
ALTER TABLE idempotency_keys ADD COLUMN lease_until timestamptz;
