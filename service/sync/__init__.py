"""EHR sync: targets, the outbox, delivery workers and inbound pulls."""
