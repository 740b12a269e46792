-- aegir state, version 23: an index for the retention of webhook
-- deliveries (webhooks.keep, Store.PruneDeliveries): the deliveries that
-- ended (delivered or failed), by their last attempt (their creation when
-- they had none), so that each batch of the prune reads the oldest of
-- them alone, oldest first, rather than every delivery of the table; a
-- pass with nothing to delete is one probe. Its condition is the
-- query's, word for word, "not pending" (delivered or failed, by the
-- table's check): with status IN ('delivered', 'failed') SQLite, having
-- no statistics, chose webhook_deliveries_due (status, next_attempt) and
-- sorted every ended delivery for each batch.
CREATE INDEX webhook_deliveries_ended ON webhook_deliveries(COALESCE(last_attempt, created), id)
    WHERE status <> 'pending';
