"""Shared kernels at the data's site: one per live notebook, owned by the site's
collaboration service (see docs/execution.md).

- ``host``: ``KernelHost``, the owner of the shared kernels (one per room key),
  fan-out of their channels, authorization by role, output capture.
- ``sandbox``: the ``cs3collab-sandbox`` jupyter_client kernel provisioner
  (bubblewrap, cgroup and rlimit limits) and ``sandbox_kernel_spec()``.
- ``workspace``: the kernel's working folder, copied from CS3 and written back.
- ``authority``: the CS3 session scoped to exactly the shared resource that a
  workspace uses.

This package imports only ``cs3collab.cs3`` and third-party libraries; the
collaboration service (``cs3collab.service``) imports it.
"""
