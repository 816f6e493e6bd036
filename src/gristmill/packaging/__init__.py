"""Packages: a registered model version as a directory that serves it alone."""

from gristmill.packaging.package import Package, write_package

__all__ = ["Package", "write_package"]
