"""``lenet lesson [NAME]``: the catalogue of lessons, one lesson's idea and results, or its code."""

import os
from pathlib import Path

from lenetlab.errors import LenetlabError
from lenetlab.fileio import atomic_path, dumps, ensure_writable
from lenetlab.lessons import format_listing, get_lesson, lesson_text, list_lessons, run_lesson
from lenetlab.lessons.notebook import lesson_notebook
from lenetlab.textfmt import Output


def run_lessons(
    name: str | None = None, source: bool = False, notebook: str | os.PathLike | None = None, **options
) -> Output:
    """Without ``name``, the catalogue: one line per lesson (JSON: name, summary and option names of
    each). With it, run that lesson with ``options``: its idea and results (JSON: its report; status 1
    when a check failed), with ``source`` its module's code, or with ``notebook`` write it as a Jupyter
    notebook at that path (:func:`lenetlab.lessons.notebook.lesson_notebook`) instead of running it."""
    if name is not None and notebook is not None:
        text = dumps(lesson_notebook(name, **options), indent=1) + "\n"
        if Path(notebook).is_dir():
            raise LenetlabError(f"--notebook {notebook}: is a folder; give the notebook's file name (lesson.ipynb)")
        ensure_writable(Path(notebook).parent, "--notebook folder")
        with atomic_path(notebook, suffix=".ipynb") as tmp:
            tmp.write_text(text, encoding="utf-8")
        return Output({"lesson": name, "notebook": str(notebook)}, f"wrote {notebook}")
    if name is not None:
        return _lesson(name, source, **options)
    rows = [{"name": x.name, "summary": x.summary, "options": [o.name for o in x.options]} for x in list_lessons()]
    return Output(
        rows,
        format_listing() + "\n\nrun one with `lenet lesson NAME`; `lenet lesson NAME --help` shows what you can change",
    )


def _lesson(name: str, source: bool, **options) -> Output:
    lesson = get_lesson(name)
    if source:
        code = lesson.source()
        return Output({"lesson": name, "source": code}, code.removesuffix("\n"))
    report = run_lesson(name, **options)
    text = (
        f"{lesson_text(lesson, report)}\n\ncode: lenetlab/lessons/{lesson.module}.py "
        f"(`lenet lesson {name} --source` prints it)"
    )
    failed = [k for k, ok in report.checks.items() if not ok]
    notes = [f"lesson {name}: {len(failed)} check(s) failed: {', '.join(failed)}"] if failed else []
    return Output(report.to_dict(), text, notes, status=1 if failed else 0)
