"""A test worker that cannot start: it sends a `fatal` line and exits."""

import json
import sys

print(json.dumps({"type": "fatal", "error":
                  "azure-functions is not installed for python3: run `python3 -m pip install azure-functions`"}),
      flush=True)
sys.exit(1)
