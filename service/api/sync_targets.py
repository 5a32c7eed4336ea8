"""Create, read, list and change EHR sync targets (/api/v1/sync/targets): the generic record routes over the
sync target table, admins only and role-only. The rest of the sync administration is service/api/sync.py.

(No `from __future__ import annotations`: FastAPI reads the annotations at run time.)
"""

from service.api.records import record_router
from service.sync.target_kind import SYNC_TARGETS

router = record_router(SYNC_TARGETS)
