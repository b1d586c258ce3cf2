"""The collaboration service: rooms, journal, persistence, access policy, federation endpoint."""

import sys

# jsonschema (through nbformat) imports rfc3987_syntax when it is installed
# (jsonschema[format-nongpl], which jupyter_events asks for) to check the
# "iri" format, and rfc3987_syntax 1.1.0 builds some 35 Lark parsers at
# import: 1.6 s of CPU here, in the service and again in its document worker,
# 40-80 s each when the machine is loaded (a restart under load missed its
# 120 s start-up). No notebook schema uses "iri": the service's processes do
# without it (jsonschema skips a checker whose import fails). Upstream:
# python-jsonschema/jsonschema#1428. A process that imported it already keeps it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
