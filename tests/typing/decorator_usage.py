"""
Checked by mypy (pyproject's ``[tool.mypy] files``), never run: ``functiongraph_task`` is typed with the
operator's options, so an editor offers them and flags a value of the wrong type (a misspelled name
passes, as with every Airflow operator: the rest go to ``BaseOperator``). The ``type: ignore`` lines are
errors mypy must find: with ``warn_unused_ignores`` an ignore that is no longer needed fails the check.
"""

from __future__ import annotations

from airflow_provider_fgs.decorators.functiongraph import functiongraph_task


@functiongraph_task(function_name="square", qualifier="latest", deferrable=True, retries=2)
def square(x: int) -> dict[str, int]:
    return {"x": x}


functiongraph_task(function_name=42)  # type: ignore[arg-type]
functiongraph_task(deferrable="yes")  # type: ignore[arg-type]
