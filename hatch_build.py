"""The package index's long description: README.md with its links made absolute.

PyPI shows the long description away from the repository, where README.md's relative links
(``docs/connection.md``, ``LICENSE``) lead nowhere. This hatchling metadata hook points each of them at
the file in the source repository (``[project.urls] Source``), at the release's tag.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

RELATIVE_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#)([^)\s]+)\)")


def absolute_links(markdown: str, base: str) -> str:
    """``markdown`` with every relative link target prefixed with ``base`` (``https://.../blob/TAG``)."""
    return RELATIVE_LINK.sub(lambda link: f"]({base}/{link[1]})", markdown)


class CustomMetadataHook(MetadataHookInterface):
    """Sets ``readme`` from README.md with absolute links."""

    def update(self, metadata: dict[str, Any]) -> None:
        root = Path(self.root)
        version = re.search(
            r'^__version__ = "([^"]+)"', (root / "airflow_provider_fgs/__init__.py").read_text(), re.M
        )
        assert version is not None, "airflow_provider_fgs/__init__.py defines no __version__"
        base = f"{metadata['urls']['Source']}/blob/v{version[1]}"
        metadata["readme"] = {
            "content-type": "text/markdown",
            "text": absolute_links((root / "README.md").read_text(), base),
        }
