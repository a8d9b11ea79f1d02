"""Dockerfile to image, and the ``pybuild`` command line."""
