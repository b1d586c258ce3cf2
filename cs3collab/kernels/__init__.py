"""Shared kernels at the data's site: one per live notebook, owned by the site's
collaboration service (see docs/execution.md). Imports only cs3collab.cs3 and
third-party packages."""
