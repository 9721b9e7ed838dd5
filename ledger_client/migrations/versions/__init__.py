"""Alembic revisions, one file each, named NNNN_<package>_<what>.py, in one linear chain."""
