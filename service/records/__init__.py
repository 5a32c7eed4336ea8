"""The clinical records Tandem stores: tables, API shapes, and the one store every edge writes through."""
