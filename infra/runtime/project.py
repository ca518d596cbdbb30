"""Load a Chalice project the way chalice itself does, and answer Lambda's questions about it.

Every runtime process (supervisor, worker, scheduler) loads the app through
chalice's own CLIFactory, so the stage's environment variables from
`.chalice/config.json` are in `os.environ` before `app.py` is imported, as
they are in a deployed function.
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

from chalice.app import BaseEventSourceConfig, Chalice, DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.local import LambdaContext

# Lambda's default when config.json names no timeout.
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_MEMORY_MB = 128
# The account every emulator (moto, LocalStack) reports by default.
EMULATED_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class Project:
    project_dir: str
    stage: str
    config: Config
    app: Chalice

    @property
    def app_name(self) -> str:
        return self.config.app_name

    def function_name(self, source_name: str) -> str:
        """The name `chalice deploy` gives the Lambda function of an event source."""
        return f"{self.app_name}-{self.stage}-{source_name}"

    def function_config(self, source_name: str) -> Config:
        return self.config.scope(self.stage, source_name)

    def function_timeout(self, source_name: str, override: float | None = None) -> float:
        if override is not None:
            return override
        return self.function_config(source_name).lambda_timeout or DEFAULT_TIMEOUT_SECONDS

    def lambda_context(self, source_name: str, timeout_seconds: float, region: str) -> LambdaContext:
        """A fresh context per invocation: its remaining time counts down from now."""
        name = self.function_name(source_name)
        context = LambdaContext(
            function_name=name,
            memory_size=self.function_config(source_name).lambda_memory_size or DEFAULT_MEMORY_MB,
            max_runtime_ms=int(timeout_seconds * 1000),
        )
        context.invoked_function_arn = f"arn:aws:lambda:{region}:{EMULATED_ACCOUNT_ID}:function:{name}"
        context.log_group_name = f"/aws/lambda/{name}"
        return context

    def sqs_sources(self) -> list[SQSEventConfig]:
        return [source for source in self.app.event_sources if isinstance(source, SQSEventConfig)]

    def schedule_sources(self) -> list[ScheduledEventConfig]:
        return [source for source in self.app.event_sources if isinstance(source, ScheduledEventConfig)]

    def dynamodb_sources(self) -> list[DynamoDBEventConfig]:
        return [source for source in self.app.event_sources if isinstance(source, DynamoDBEventConfig)]

    def unsupported_sources(self) -> list[BaseEventSourceConfig]:
        supported = (SQSEventConfig, ScheduledEventConfig, DynamoDBEventConfig)
        return [source for source in self.app.event_sources if not isinstance(source, supported)]

    def sqs_source(self, name: str) -> SQSEventConfig:
        return _source_named(self.sqs_sources(), name)

    def dynamodb_source(self, name: str) -> DynamoDBEventConfig:
        return _source_named(self.dynamodb_sources(), name)


def load_project(project_dir: str, stage: str, function_name: str | None = None) -> Project:
    """Import the project's app.py with the stage's configuration applied.

    With `function_name`, that function's own `lambda_functions` settings in
    config.json (environment variables included) apply too, as they do for
    the one deployed Lambda function that runs it.
    """
    project_dir = os.path.abspath(project_dir)
    if project_dir not in sys.path:
        sys.path.insert(0, project_dir)
    factory = CLIFactory(project_dir, environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    if function_name is None:
        app = config.chalice_app
    else:
        # Scoping merges global, stage and function environment variables,
        # so a function's own setting wins, as it does when deployed.
        config = config.scope(stage, function_name)
        app = factory.load_chalice_app(config.environment_variables)
    return Project(project_dir=project_dir, stage=stage, config=config, app=app)


def resolve_handler(handler_string: str) -> Callable[[Any, Any], Any]:
    """What Lambda calls for a handler string like `app.on_job` (or `blueprints.mod.fn`).

    Chalice's decorators leave a wrapper under the function's name that takes
    the raw `(event, context)`, as Lambda passes them.
    """
    module_name, _, attribute = handler_string.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def _source_named(sources: list, name: str):
    for source in sources:
        if source.name == name:
            return source
    known = ", ".join(source.name for source in sources) or "none"
    raise LookupError(f"no event source named {name!r} (known: {known})")
