"""MkDocs hooks (mkdocs.yml): the README is the site's home page, and the repository files the pages
link to travel with the site.

The pages link to files outside docs/ (``../results/mnist.json``, ``../SECURITY.md``) so that they work
on GitHub; the site copies each such file under ``repo/`` and points the link there. A link to a file
that does not exist stays as it is, and ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

LINK = re.compile(r"\]\((\.\./[^)#\s]+)")


def _outside_target(page_uri: str, target: str, docs: Path, repo: Path) -> str | None:
    path = (docs / posixpath.dirname(page_uri) / target).resolve()
    if path.is_file() and repo in path.parents and docs not in path.parents:
        return "repo/" + path.relative_to(repo).as_posix()
    return None


def on_files(files, config):
    docs, repo = Path(config.docs_dir).resolve(), Path(config.config_file_path).resolve().parent
    uris = {
        _outside_target(page.src_uri, target, docs, repo)
        for page in files.documentation_pages()
        for target in LINK.findall(Path(page.abs_src_path).read_text(encoding="utf-8"))
    }
    files.append(File.generated(config, "index.md", abs_src_path=str(repo / "README.md")))
    for uri in sorted(uris - {None}):
        files.append(File.generated(config, uri, abs_src_path=str(repo / uri.removeprefix("repo/"))))
    return files


def on_page_markdown(markdown, page, config, files):
    docs, repo = Path(config.docs_dir).resolve(), Path(config.config_file_path).resolve().parent

    def relink(m: re.Match) -> str:
        uri = _outside_target(page.file.src_uri, m[1], docs, repo)
        return f"]({posixpath.relpath(uri, posixpath.dirname(page.file.src_uri) or '.')}" if uri else m[0]

    return LINK.sub(relink, markdown)
