"""``python -m doctor [-c name=value ...]`` (what ``make doctor CDK_ARGS=...`` runs)."""

import sys

from doctor.checks import main

sys.exit(main())
