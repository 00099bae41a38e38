"""
Release a new version of a FunctionGraph function: deploy, publish, canary, promote.

1. ``deploy_code`` zips ``functions/release/greeter_v2`` and uploads it as the function's code, with the
   handler ``index.handler``; ``wait_for_update`` waits until the function reports that code and handler.
2. ``publish_version`` snapshots it as an immutable version (``version`` in the form; re-running reuses
   a version that already holds the same code).
3. ``canary`` points the ``canary`` alias at ``stable_version`` and sends ``canary_weight`` percent of
   its calls to the new version; ``invoke_canary`` calls the function through the alias.
4. ``promote`` points the alias at the new version for all calls; ``invoke_promoted`` checks it.

Trigger it from the UI with "Trigger DAG": the form asks for the function, the versions and the weight.
The function is named, not given as a URN: the connection ``functiongraph_default`` supplies the region
and project, so the DAG runs unchanged against the local emulator or real FunctionGraph.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG, Param

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.operators.release import (
    PublishFunctionVersionOperator,
    UpdateFunctionAliasOperator,
    UpdateFunctionCodeOperator,
)
from airflow_provider_fgs.sensors.release import FunctionUpdatedSensor

CODE_DIR = Path(__file__).parent / "functions" / "release" / "greeter_v2"
NEW_VERSION = "{{ ti.xcom_pull(task_ids='publish_version') }}"

with DAG(
    dag_id="functiongraph_release",
    schedule=None,
    tags=["example", "functiongraph", "release"],
    params={
        "function_name": Param(
            "greeter", type="string", title="Function", description="The function to release"
        ),
        "version": Param(
            "v2",
            type="string",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,41}$",
            title="New version",
            description="Name of the version to publish",
        ),
        "stable_version": Param(
            "v1", type="string", title="Stable version", description="The version serving calls today"
        ),
        "canary_weight": Param(
            10, type="integer", minimum=0, maximum=100, title="Canary weight", description="Percent of calls"
        ),
    },
    doc_md=__doc__,
) as dag:
    function = "{{ params.function_name }}"
    deploy = UpdateFunctionCodeOperator(
        task_id="deploy_code", function_name=function, code_path=str(CODE_DIR), handler="index.handler"
    )
    wait = FunctionUpdatedSensor(
        task_id="wait_for_update",
        function_name=function,
        expected_digest="{{ ti.xcom_pull(task_ids='deploy_code', key='digest') }}",
        expected_config={"handler": "index.handler"},
        poke_interval=2,
        timeout=300,
    )
    publish = PublishFunctionVersionOperator(
        task_id="publish_version",
        function_name=function,
        version="{{ params.version }}",
        description="released by {{ run_id }}",
        digest="{{ ti.xcom_pull(task_ids='deploy_code', key='digest') }}",
    )
    canary = UpdateFunctionAliasOperator(
        task_id="canary",
        function_name=function,
        alias_name="canary",
        version="{{ params.stable_version }}",
        canary_version=NEW_VERSION,
        canary_weight="{{ params.canary_weight }}",
    )
    invoke_canary = InvokeFunctionOperator.partial(
        task_id="invoke_canary", function_name=function, alias="canary"
    ).expand(payload=[{"name": f"caller {i}"} for i in range(10)])
    promote = UpdateFunctionAliasOperator(
        task_id="promote", function_name=function, alias_name="canary", version=NEW_VERSION
    )
    invoke_promoted = InvokeFunctionOperator(
        task_id="invoke_promoted", function_name=function, alias="canary", payload={"name": "everyone"}
    )
    deploy >> wait >> publish >> canary >> invoke_canary >> promote >> invoke_promoted
