"""``python -m mmdm.airflow_plugin.cli`` is the ``mmdm`` command."""

import sys

from . import main

sys.exit(main())
