"""Editable installs (``pip install -e .``) import the checkout as ``mmdm.*``, like the wheel.

The repository keeps ``query/``, ``adapters/`` and ``airflow_plugin/`` at its top level and the
wheel installs them as ``mmdm.query``, ``mmdm.adapters`` and ``mmdm.airflow_plugin`` (the
``force-include`` table in pyproject.toml, the one place that names them). A path entry cannot add
that prefix, so an editable install gets a small meta-path finder instead. It maps exactly those
names onto the checkout; nothing else in the checkout becomes importable through it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

FINDER = '''\
"""mmdm editable install: maps mmdm's subpackages onto the source checkout."""
import importlib.machinery
import importlib.util
import os
import sys

PACKAGES = {packages!r}


class MmdmEditableFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "mmdm":  # a namespace package, as in the wheel
            return importlib.machinery.ModuleSpec(name, None, is_package=True)
        folder = PACKAGES.get(name)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            name, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])


if MmdmEditableFinder not in sys.meta_path:
    sys.meta_path.append(MmdmEditableFinder)
'''


class EditableNamespaceHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if version != "editable":
            return
        packages = {target.replace("/", "."): os.path.normpath(source)
                    for source, target in self.build_config.get_force_include().items()}
        self._tmp = tempfile.mkdtemp(prefix="mmdm-editable-")
        finder = os.path.join(self._tmp, "_mmdm_editable.py")
        pth = os.path.join(self._tmp, "_mmdm_editable.pth")
        with open(finder, "w", encoding="utf-8") as f:
            f.write(FINDER.format(packages=packages))
        with open(pth, "w", encoding="utf-8") as f:
            f.write("import _mmdm_editable\n")
        # Replaces the force-include table for this build: the editable wheel ships only these.
        build_data["force_include_editable"] = {finder: "_mmdm_editable.py",
                                                pth: "_mmdm_editable.pth"}

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        if version == "editable":
            shutil.rmtree(self._tmp, ignore_errors=True)
