"""The provider as an operator of Airflow meets it: the Airflow UI in a real headless Chromium.

Logs in through the simple auth manager's form, adds a ``functiongraph`` connection with the Add
Connection form, presses the connection's Test button, and opens a finished task's pages for its
function log and its console extra link. Screenshots go to ``artifacts/integration/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from airflow_provider_fgs.compat import AIRFLOW_V_3_2_PLUS
from airflow_provider_fgs.get_provider_info import get_provider_info
from airflow_provider_fgs.hooks.connection_form import AUTH_MODES, CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.links.functiongraph import (
    FunctionGraphConsoleLink,
    FunctionGraphLogLink,
    function_console_url,
    lts_log_stream_url,
)
from airflow_provider_fgs.protocol.urn import FunctionUrn
from tests.machine import needs

from .browser import chromium, chromium_missing_reason
from .conftest import (
    CHAIN_DAG,
    CHAIN_TEXT,
    INTEGRATION_TIMEOUT,
    METRICS_DAG,
    RUN_TIMEOUT,
    Deployment,
    Runs,
    phase_report_key,
)
from .deployment import ADMIN_USER

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(INTEGRATION_TIMEOUT),
    needs(chromium_missing_reason()),
]

UI_CONN_ID = "fgs_from_ui"
BAD_CONN_ID = "fgs_wrong_secret"
UI_TIMEOUT_MS = 30_000


def _hook_name() -> str:
    (entry,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "functiongraph"]
    name: str = entry["hook-name"]
    return name


@pytest.fixture(scope="module")
def page(deployment: Deployment, runs: Runs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """
    One logged-in page of a fresh Chromium profile, shared by the tests of this module.

    Asks for ``runs`` so the example DAGs run while the connection pages are tested.
    """
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(f"{deployment.airflow.url}/")
        expect(page.get_by_text("Sign into Airflow")).to_be_visible()
        page.get_by_label("Username").fill(ADMIN_USER)
        page.get_by_label("Password").fill(deployment.airflow.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)
        yield page


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest, page: Page, artifacts_dir: Path) -> Iterator[None]:
    yield
    report = request.node.stash.get(phase_report_key, {}).get("call")
    if report is not None and report.failed:
        page.screenshot(path=str(artifacts_dir / f"failed-{request.node.name}.png"), full_page=True)


def _field_group(scope: Locator, name: str) -> Locator:
    """The form row (label, input, help text) of the input named ``name``."""
    return scope.locator(f'[role="group"]:has([name="{name}"])').last


def _toast(page: Page, title: str) -> Locator:
    return page.locator('[data-scope="toast"][data-part="root"]').filter(has_text=title).last


def _without_request_id(message: str) -> str:
    """
    The hook's verdict without what differs from call to call: the request id, and the connection id
    (Airflow tests a transient copy of the connection under a random id).
    """
    return re.sub(r"\s*\((request id|connection) [^)]*\)", "", message)


def _connection_row(page: Page, conn_id: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))


def test_add_connection_form_offers_functiongraph_fields(
    page: Page, deployment: Deployment, artifacts_dir: Path
) -> None:
    from playwright.sync_api import expect

    emulator = deployment.emulator
    page.goto(f"{deployment.airflow.url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator('[name="connection_id"]').fill(UI_CONN_ID)
    dialog.get_by_role("combobox", name="Connection Type").fill("FunctionGraph")
    page.get_by_role("option", name=_hook_name(), exact=True).click()

    for field, label in UI_FIELD_BEHAVIOUR["relabeling"].items():
        expect(_field_group(dialog, field).locator("label").first).to_have_text(label)
    for field in UI_FIELD_BEHAVIOUR["hidden-fields"]:
        expect(dialog.locator(f'[name="{field}"]')).to_have_count(0)
    expect(dialog.locator('[name="password"]')).to_have_attribute("type", "password")
    # The standard fields fold away when the extra fields open: fill them first.
    body = deployment.connection_body(UI_CONN_ID)
    dialog.locator('[name="login"]').fill(body["login"])
    dialog.locator('[name="password"]').fill(body["password"])

    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    # The accordion's aria-labelledby holds an id with a space, so the region has no accessible name.
    extras = dialog.locator('[role="region"][id$=":content:Extra Fields"]')
    expect(extras.get_by_text(CONN_FIELDS["region"]["label"], exact=True)).to_be_visible()
    shown: list[list[Any]] = extras.evaluate(
        """region => Array.from(region.querySelectorAll('[role="group"]')).map(group => [
            group.querySelector('label[data-part="label"]')?.textContent?.trim() ?? null,
            group.querySelector('[data-part="helper-text"]')?.textContent?.trim() ?? null,
        ]).filter(([label]) => label)"""
    )
    assert dict(shown) == {spec["label"]: spec["description"] for spec in CONN_FIELDS.values()}
    for field, spec in CONN_FIELDS.items():
        if spec["schema"].get("format") == "password":
            expect(dialog.locator(f'[name="element_{field}"]')).to_have_attribute("type", "password")

    if AIRFLOW_V_3_2_PLUS:  # the auth types as a dropdown, each with what it means (3.1 draws a text box)
        _field_group(dialog, "element_auth_type").get_by_role("combobox").click()
        for label in AUTH_MODES.values():
            expect(page.get_by_role("option", name=label, exact=True)).to_have_count(1)
        page.get_by_role("option", name=AUTH_MODES["aksk"], exact=True).click()

    typed = {
        "region": emulator.region,
        "project_id": emulator.project_id,
        "endpoint": emulator.url,
        "iam_endpoint": emulator.url,
    }
    for field, value in typed.items():
        dialog.locator(f'[name="element_{field}"]').fill(value)
    _field_group(dialog, "element_region").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "01-add-connection-form.png"))

    dialog.get_by_role("button", name="Save").click()
    expect(_toast(page, "Create Connection Request Submitted")).to_be_visible()
    expect(_connection_row(page, UI_CONN_ID)).to_contain_text("functiongraph")

    stored = deployment.api.get_connection(UI_CONN_ID)
    assert stored["conn_type"] == "functiongraph"
    assert stored["login"] == body["login"]
    assert {key: json.loads(stored["extra"]).get(key) for key in typed} == typed
    assert json.loads(stored["extra"]).get("auth_type") == ("aksk" if AIRFLOW_V_3_2_PLUS else None)


def test_test_button_reports_the_hook_verdict(
    page: Page, deployment: Deployment, artifacts_dir: Path
) -> None:
    from playwright.sync_api import expect

    api = deployment.api
    if api.request("GET", f"/connections/{UI_CONN_ID}", 200, 404).status_code == 404:
        api.create_connection(deployment.connection_body(UI_CONN_ID))  # the form test did not get that far
    wrong = {**deployment.connection_body(BAD_CONN_ID), "password": "not-the-secret-key-0123456789"}
    api.create_connection(wrong)
    # Airflow 3.3.2's UI posts `port: Number(null)` = 0 for a connection without a port, which the API
    # then takes for a different destination and answers 400 (fixed upstream in apache/airflow#73298).
    # A stored port of 0 matches it; FunctionGraph connections ignore the port.
    for conn_id in (UI_CONN_ID, BAD_CONN_ID):
        api.request(
            "PATCH",
            f"/connections/{conn_id}",
            params={"update_mask": "port"},
            json={"connection_id": conn_id, "conn_type": "functiongraph", "port": 0},
        )

    # What the hook says about each connection, asked through the API, is what the UI must show.
    accepted = api.test_connection(deployment.connection_body(UI_CONN_ID))
    refused = api.test_connection(wrong)
    assert accepted["status"] is True, accepted
    assert refused["status"] is False, refused

    page.goto(f"{deployment.airflow.url}/connections")
    _connection_row(page, UI_CONN_ID).get_by_role("button", name="Test Connection").click()
    success = _toast(page, "Test Connection Successful")
    expect(success).to_be_visible()
    assert _without_request_id(accepted["message"]) in _without_request_id(success.inner_text())
    page.screenshot(path=str(artifacts_dir / "02-test-connection-success.png"))

    page.mouse.move(0, 0)  # the first button's tooltip would cover the second button
    _connection_row(page, BAD_CONN_ID).get_by_role("button", name="Test Connection").click()
    failure = _toast(page, "Test Connection Failed")
    expect(failure).to_be_visible()
    # The hook's refusal, or (the API's test just had the key rejected) the cool-down that quotes it.
    assert _without_request_id(refused["message"]) in _without_request_id(failure.inner_text())
    assert wrong["password"] not in failure.inner_text()
    page.screenshot(path=str(artifacts_dir / "03-test-connection-failure.png"))


def test_task_pages_show_function_log_and_console_link(
    page: Page, deployment: Deployment, runs: Runs, artifacts_dir: Path, probe_hook: FunctionGraphHook
) -> None:
    from playwright.sync_api import expect

    api = deployment.api
    assert api.wait_for_run(CHAIN_DAG, runs.chain, RUN_TIMEOUT) == "success"
    task_url = (
        f"{deployment.airflow.url}/dags/{CHAIN_DAG}/runs/{quote(runs.chain, safe='')}/tasks/count_words"
    )
    words = re.findall(r"[a-z]+", CHAIN_TEXT.lower())

    page.goto(task_url)
    expect(page.get_by_text(f"counted {len(words)} words", exact=False).first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "04-task-log.png"))

    page.goto(f"{task_url}/details")
    link = page.get_by_role("link", name=FunctionGraphConsoleLink.name, exact=True)
    emulator = deployment.emulator
    urn = FunctionUrn.from_parts(region=emulator.region, project_id=emulator.project_id, name="count_words")
    expect(link).to_have_attribute("href", function_console_url(urn))
    stream = probe_hook.function_log_stream(urn)
    assert stream is not None
    request_id = api.xcom(CHAIN_DAG, runs.chain, "count_words", key="request_id")
    log_link = page.get_by_role("link", name=FunctionGraphLogLink.name, exact=True)
    expect(log_link).to_have_attribute("href", lts_log_stream_url(urn.region, *stream, request_id=request_id))
    page.screenshot(path=str(artifacts_dir / "05-task-extra-link.png"))


RELEASE_DAG = "functiongraph_release"


def test_release_is_triggered_from_the_params_form(
    page: Page, deployment: Deployment, runs: Runs, artifacts_dir: Path
) -> None:
    """An ops engineer fills the release DAG's trigger form; the run deploys, splits and promotes."""
    from playwright.sync_api import expect

    api = deployment.api
    api.wait_for_dag(RELEASE_DAG)
    api.unpause(RELEASE_DAG)
    page.goto(f"{deployment.airflow.url}/dags/{RELEASE_DAG}")
    page.locator("button", has_text=re.compile(r"^\s*Trigger\s*$")).first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    version_field = dialog.locator('[name="element_version"]')
    if not version_field.is_visible():
        dialog.get_by_role("button", name="Run Parameters").click()
    expect(dialog.locator('[name="element_function_name"]')).to_have_value("greeter")
    version_field.fill("v2ui")
    dialog.locator('[name="element_canary_weight"]').fill("20")
    page.screenshot(path=str(artifacts_dir / "06-release-trigger-form.png"))
    dialog.locator("button", has_text=re.compile(r"^\s*Trigger\s*$")).last.click()
    expect(_toast(page, "Dag Run Triggered")).to_be_visible()

    listed = api.request("GET", f"/dags/{RELEASE_DAG}/dagRuns", params={"order_by": "-run_after"}).json()
    (run,) = [r for r in listed["dag_runs"] if r["conf"].get("version") == "v2ui"]
    assert run["conf"]["function_name"] == "greeter"
    assert run["conf"]["canary_weight"] == 20
    assert api.wait_for_run(RELEASE_DAG, run["dag_run_id"], RUN_TIMEOUT) == "success"
    assert api.xcom(RELEASE_DAG, run["dag_run_id"], "publish_version") == "v2ui"
    canary = api.xcom(RELEASE_DAG, run["dag_run_id"], "canary")
    assert (canary["version"], canary["weights"]) == ("v1", {"v2ui": 20})
    promoted = api.xcom(RELEASE_DAG, run["dag_run_id"], "invoke_promoted")
    assert (promoted["version"], promoted["release"]) == ("v2ui", 2)


def test_functiongraph_view_from_the_navigation(
    page: Page, deployment: Deployment, runs: Runs, artifacts_dir: Path
) -> None:
    """Browse → FunctionGraph: the functions and their tasks, one function's invocations, a live release."""
    from playwright.sync_api import expect

    api = deployment.api
    assert api.wait_for_run(CHAIN_DAG, runs.chain, RUN_TIMEOUT) == "success"
    page.goto(f"{deployment.airflow.url}/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="FunctionGraph").click()
    # What the user sees, polled. The UI moves on from /plugin/functiongraph to a longer path of the plugin
    # route once the view has loaded: a wait for the first URL timed out when it came after that change.
    view = page.frame_locator("iframe")
    expect(view.locator("[data-testid=functions]")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/plugin/functiongraph(/|$)"))

    split_words = view.locator("[data-testid=functions] tr[data-function='default/split_words']")
    expect(split_words).to_contain_text(f"{CHAIN_DAG}.split_words")
    split_words.get_by_role("button", name="Invocations").click()
    request_id = api.xcom(CHAIN_DAG, runs.chain, "split_words", key="request_id")
    invocation = view.locator(f"[data-testid=invocations] tr[data-request-id='{request_id}']")
    expect(invocation).to_contain_text("success")
    expect(invocation.get_by_role("link")).to_have_attribute(
        "href", re.compile(rf"/dags/{CHAIN_DAG}/runs/.+/tasks/split_words$")
    )

    # the release DAG (run by the test above) names its function with a param: its default is shown
    greeter = view.locator("[data-testid=functions] tr[data-function='default/greeter']")
    greeter.get_by_role("button", name="Release state").click()
    expect(view.locator("[data-testid=aliases]")).to_contain_text("canary")
    expect(view.locator("[data-testid=versions]")).to_contain_text("latest")
    page.screenshot(path=str(artifacts_dir / "07-functiongraph-view.png"), full_page=True)

    # The search box, and "More functions" (the page asks for 100 at a time: 2 here, rewritten in flight)
    page.route(
        re.compile(r".*/functiongraph/api/functions\?.*"),
        lambda route: route.continue_(url=route.request.url.replace("limit=100", "limit=2")),
    )
    view.get_by_test_id("function-search").fill(METRICS_DAG)
    rows = view.locator("[data-testid=functions] tbody tr")
    expect(rows).to_have_count(2)
    expect(view.locator("#functions-shown")).to_have_text("2 of 4 shown")
    view.get_by_role("button", name="More functions").click()
    expect(rows).to_have_count(4)
    expect(view.get_by_role("button", name="More functions")).to_be_hidden()
    expect(view.locator("#message")).to_have_text(f"4 function(s) match “{METRICS_DAG}”.")


def test_functiongraph_view_charts_invocations_by_outcome_in_both_themes(
    page: Page, deployment: Deployment, runs: Runs, metrics_run: str, artifacts_dir: Path
) -> None:
    """The charts with data: outcomes (the metrics run's function error among them), numbers on hover."""
    from playwright.sync_api import expect

    api = deployment.api
    assert api.wait_for_run(CHAIN_DAG, runs.chain, RUN_TIMEOUT) == "success"
    page.goto(f"{deployment.airflow.url}/plugin/functiongraph")
    view = page.frame_locator("iframe")
    charts = view.get_by_test_id("charts")
    expect(charts.locator("[data-testid=chart-outcomes] rect[data-outcome=success]").first).to_be_visible()
    expect(
        charts.locator("[data-testid=chart-outcomes] rect[data-outcome=function_error]").first
    ).to_be_visible()
    expect(view.get_by_test_id("chart-totals")).to_contain_text("function error")
    expect(charts.locator("[data-testid=chart-duration] circle[data-series=p95]").first).to_be_attached()
    expect(charts.locator("[data-testid=chart-gb-seconds] rect:not(.hover)").first).to_be_visible()
    # The numbers on hover: the interval that holds the runs names its counts.
    hovered = charts.locator("[data-testid=chart-outcomes] g", has=view.locator("rect[data-outcome=success]"))
    expect(hovered.last.locator("title")).to_contain_text(re.compile(r"\d+ succeeded\n\d+ function error"))
    charts.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "08-functiongraph-charts.png"), full_page=True)
    charts.screenshot(path=str(artifacts_dir / "08-functiongraph-charts-only.png"))  # docs/images' source

    view.get_by_test_id("window-7d").click()
    expect(view.get_by_test_id("window-7d")).to_have_attribute("aria-pressed", "true")
    expect(charts.locator("[data-testid=chart-outcomes] g")).to_have_count(28)  # 6-hour intervals
    # Airflow's dark theme (the class its UI sets on its page): the view follows it.
    page.evaluate(
        "document.documentElement.classList.remove('light'); document.documentElement.classList.add('dark')"
    )
    expect(view.locator("html")).to_have_attribute("data-theme", "dark")
    page.screenshot(path=str(artifacts_dir / "09-functiongraph-charts-dark.png"), full_page=True)
    page.evaluate(
        "document.documentElement.classList.remove('dark'); document.documentElement.classList.add('light')"
    )
    expect(view.locator("html")).to_have_attribute("data-theme", "light")
