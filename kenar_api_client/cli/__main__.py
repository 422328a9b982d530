"""``python -m kenar_api_client.cli``: the same as the ``kenar-events`` command."""

import sys

from kenar_api_client.cli import main

sys.exit(main())
