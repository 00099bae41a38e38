"""
``@task.functiongraph``: a TaskFlow function that returns the payload of a FunctionGraph invocation.

The decorated function runs on the worker and returns the event to send; the task is then an
:class:`~airflow_provider_fgs.operators.functiongraph.InvokeFunctionOperator` with that payload: the same
options, the same XComs (``return_value`` is the function's decoded result; ``request_id``, ``log``,
``summary`` and ``billing_duration_ms`` describe the invocation), the same failures.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory
from airflow.sdk.definitions.context import context_merge

from airflow_provider_fgs.compat import determine_kwargs
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["functiongraph_task"]

_OperatorArguments = ParamSpec("_OperatorArguments")

_FROM_THE_FUNCTION = (
    "@task.functiongraph sends what the decorated function returns: {argument} cannot be given. "
    "Use InvokeFunctionOperator(payload=...) for a payload that needs no Python"
)
_NEEDS_A_WORKER = (
    "@task.functiongraph cannot start in the triggerer (start_from_trigger=True): its payload comes from "
    "Python code that only a worker runs. Use deferrable=True (it waits in the triggerer), or "
    "InvokeFunctionOperator(payload=..., deferrable=True, start_from_trigger=True)"
)


class _FunctionGraphDecoratedOperator(DecoratedOperator, InvokeFunctionOperator):
    """
    Call the decorated function for the payload, then invoke as ``InvokeFunctionOperator`` does.

    :param python_callable: the decorated function; its return value is the payload (a dict or list,
        or a str/bytes holding JSON; ``None`` sends ``{}``).
    :param op_args: positional arguments of the function. (templated)
    :param op_kwargs: keyword arguments of the function. (templated)
    """

    template_fields: Sequence[str] = (
        *DecoratedOperator.template_fields,
        *InvokeFunctionOperator.template_fields,
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        **InvokeFunctionOperator.template_fields_renderers,
    }
    custom_operator_name = "@task.functiongraph"
    # The payload is known only once the function ran: the task's rendered fields are written again then.
    overwrite_rtif_after_execution = True
    # Never started by the scheduler in the triggerer, whatever a partial() says.
    start_trigger_args = None

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        _check_decorator_arguments(kwargs)
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        """Call the decorated function, and invoke the FunctionGraph function with what it returns."""
        context_merge(context, self.op_kwargs)
        self.payload = self.python_callable(
            *self.op_args, **determine_kwargs(self.python_callable, self.op_args, context)
        )
        return super().execute(context)


def _check_decorator_arguments(arguments: Mapping[str, Any]) -> None:
    """Refuse, when the DAG is parsed, what the decorator cannot do."""
    if "payload" in arguments:
        raise TypeError(_FROM_THE_FUNCTION.format(argument="payload"))
    if arguments.get("start_from_trigger"):
        raise ValueError(_NEEDS_A_WORKER)


def _typed_as(
    operator: Callable[_OperatorArguments, Any],
) -> Callable[[Callable[..., TaskDecorator]], Callable[_OperatorArguments, TaskDecorator]]:
    """Type a decorator factory with the operator's own keywords (one list of options, the operator's)."""

    def typed(factory: Callable[..., TaskDecorator]) -> Callable[_OperatorArguments, TaskDecorator]:
        return factory

    return typed


@_typed_as(InvokeFunctionOperator)
def functiongraph_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """
    Wrap a function that returns a payload into a task that invokes a FunctionGraph function with it.

    Registered as ``@task.functiongraph``; import this name for editors to see the options, which are
    :class:`~airflow_provider_fgs.operators.functiongraph.InvokeFunctionOperator`'s (except ``payload``,
    which the function returns, and ``start_from_trigger``). The task returns the function's result.
    ``multiple_outputs`` is false unless given: the function's return annotation types the payload,
    not the result.

    :param python_callable: the decorated function (given by Python when used without arguments).
    """
    _check_decorator_arguments(kwargs)
    kwargs.setdefault("multiple_outputs", False)
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_FunctionGraphDecoratedOperator,
        **kwargs,
    )
