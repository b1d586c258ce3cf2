"""cs3collab: real-time collaboration for Jupyter notebooks stored in CS3 storage."""

__version__ = "0.1.0"
