"""Compact JSON text of DryPipe's own trees (task specs, task-conf.json), as fast as the json
module can make it: its C encoder called directly. json.JSONEncoder.encode builds that encoder
anew on every call, which is a third of the time of encoding a 100,000-task DAG's specs. No
cycle check (the DSL builds trees), no key sorting; ensure_ascii, as json.dumps does."""
from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii

try:
    from _json import make_encoder as _c_make_encoder
except ImportError:  # an interpreter without the C accelerator
    _c_make_encoder = None


def _default(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


if _c_make_encoder is not None:
    _encoder = _c_make_encoder(None, _default, encode_basestring_ascii, None, ":", ",", False, False, True)

    _sorted_encoder = _c_make_encoder(None, _default, encode_basestring_ascii, None, ":", ",", True, False, True)

    def dumps(o) -> str:
        """The compact JSON text of o (json.dumps(o, separators=(",", ":")), without its cycle check)."""
        return "".join(_encoder(o, 0))

    def dumps_sorted(o) -> str:
        """dumps(o) with keys sorted: json.dumps(o, sort_keys=True, separators=(",", ":"))."""
        return "".join(_sorted_encoder(o, 0))
else:
    dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
    dumps_sorted = json.JSONEncoder(separators=(",", ":"), check_circular=False, sort_keys=True).encode
