"""Write the suites of `xsell.quality.suites` into the GE file context in gx/.

Idempotent: a suite, data asset or validation definition that already says what the
declarations say is left as it is (same ids, same file), so running it on an up-to-date
gx/ changes nothing, and `git diff gx/` shows exactly what an edit of suites.py changed.
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path

from xsell.quality.gate import BATCH_DEFINITION, DATASOURCE, _quiet_gx
from xsell.quality.suites import SuiteSpec, all_suites


def _signature(expectation) -> str:
    config = expectation.configuration.to_json_dict()
    config.pop("id", None)
    config.pop("rendered_content", None)
    return json.dumps(config, sort_keys=True, default=str)


def _same(suite, spec: SuiteSpec) -> bool:
    return (suite.meta or {}).get("xsell") == spec.meta["xsell"] and [
        _signature(e) for e in suite.expectations
    ] == [_signature(e) for e in spec.expectations]


def write_gx(gx_dir: Path, specs: list[SuiteSpec] | None = None) -> list[str]:
    """Create or update gx_dir from the declarations; returns what changed, in words."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    specs = all_suites() if specs is None else specs
    context = gx.get_context(mode="file", context_root_dir=str(Path(gx_dir).resolve()))
    changes: list[str] = []

    variables = context.variables
    bars = variables.progress_bars
    bars_on = bars is None or (bars.get("globally") if isinstance(bars, dict) else bars.globally)
    if variables.analytics_enabled is not False or bars_on:
        variables.analytics_enabled = False
        variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        sites = variables.data_docs_sites or {}
        for site in sites.values():
            site["show_how_to_buttons"] = False
        variables.data_docs_sites = sites
        variables.save()
        changes.append("context settings: analytics and progress bars off")

    try:
        source = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        source = context.data_sources.add_pandas(DATASOURCE)
        changes.append(f"data source {DATASOURCE}")

    declared = {spec.name for spec in specs}
    for definition in list(context.validation_definitions.all()):
        if definition.name not in declared:
            context.validation_definitions.delete(definition.name)
            changes.append(f"removed validation definition {definition.name}")
    for suite in list(context.suites.all()):
        if suite.name not in declared:
            context.suites.delete(suite.name)
            changes.append(f"removed suite {suite.name}")
    for asset in list(source.assets):
        if asset.name not in declared:
            source.delete_asset(asset.name)
            changes.append(f"removed data asset {asset.name}")

    for spec in specs:
        try:
            asset = source.get_asset(spec.name)
        except LookupError:
            asset = source.add_dataframe_asset(spec.name)
            changes.append(f"data asset {spec.name}")
        try:
            batch = asset.get_batch_definition(BATCH_DEFINITION)
        except KeyError:
            batch = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)

        try:
            suite = context.suites.get(spec.name)
        except Exception:  # noqa: BLE001 - GE raises its own not-found errors
            suite = None
        if suite is not None and not _same(suite, spec):
            _delete_definition(context, spec.name)
            context.suites.delete(spec.name)
            suite = None
        if suite is None:
            suite = context.suites.add(
                gx.ExpectationSuite(
                    name=spec.name,
                    expectations=[copy.copy(e) for e in spec.expectations],
                    meta=spec.meta,
                )
            )
            changes.append(f"suite {spec.name} ({len(spec.expectations)} expectations)")
        try:
            context.validation_definitions.get(spec.name)
        except Exception:  # noqa: BLE001
            context.validation_definitions.add(
                gx.ValidationDefinition(name=spec.name, data=batch, suite=suite)
            )
    return changes


def _delete_definition(context, name: str) -> None:
    with contextlib.suppress(Exception):  # absent already
        context.validation_definitions.delete(name)
