"""Export (FileMetaExport), import (FileMetaImport) and the training-side loader."""

from .exporter import ExportResult, export_file_metas, iter_export_rows
from .importer import import_file_metas, iter_manifest_rows
from .loader import ExportDataset
from .manifest import MANIFEST_NAME, Manifest
from .rows import EXPORT_ATTRIBUTES

__all__ = [
    "EXPORT_ATTRIBUTES", "MANIFEST_NAME", "ExportDataset", "ExportResult", "Manifest",
    "export_file_metas", "import_file_metas", "iter_export_rows", "iter_manifest_rows",
]
