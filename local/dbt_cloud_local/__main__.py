"""``python -m dbt_cloud_local``: see :mod:`dbt_cloud_local.cli`."""

from __future__ import annotations

import sys

from dbt_cloud_local.cli import main

sys.exit(main())
