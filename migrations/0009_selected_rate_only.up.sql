-- 0009_selected_rate_only: of a shipment's rates, only the selected (purchased) one is a row
-- of "rates" (issue 15, write each fact once).
--
-- The read API reads a shipment's rate by shipments.selected_rate_id and nothing else reads
-- "rates" (not the views of 0002/0006, not the MCP tools); every rate a shipment was offered
-- stays in shipments.raw ('rates'), where the down migration finds them again.  A real
-- shipment carries 5-10 rates: this is most of the table.
--
-- The sync worker (libs/sync, map.c) writes the selected rate only from this version on.
-- Here the rows no shipment selected are deleted.  DELETE takes ROW EXCLUSIVE on rates and
-- ACCESS SHARE on shipments: readers and the worker's writes of other rows go on; only a
-- write to a row being deleted (an old worker, during a rolling upgrade, upserting an
-- unselected rate) waits for the commit.  shipstream-migrate runs the file in one
-- transaction, so batches would not release anything earlier: one set-based statement (a
-- hash anti-join, one pass over each table).  The space is reused by new rows after VACUUM.
SET LOCAL lock_timeout = '10s';

DELETE FROM rates r
 WHERE NOT EXISTS (SELECT 1 FROM shipments s WHERE s.selected_rate_id = r.id);
