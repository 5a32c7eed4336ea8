"""The clinical records Tandem stores: tables and API shapes only (the store is `service.record_store`)."""
