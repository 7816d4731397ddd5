"""Synthesize the stack once per configuration; tests assert on the template."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from stacks.async_jobs_stack import AsyncJobsStack
from stacks.config import AppConfig

_SYNTHESIZED: dict[str, tuple[AsyncJobsStack, Template]] = {}


def synth(context: dict[str, Any] | None = None, nag: bool = False) -> tuple[AsyncJobsStack, Template]:
    """The stack synthesized with ``context`` (and cdk-nag's AwsSolutions checks when ``nag``).

    Once per context in a test process: the tests only read what it returns, and a synthesis
    costs a second or more of calls into the CDK's Node.js process (138 calls, 77 contexts).
    A test that changes what a synthesis reads calls :func:`fresh_synth`."""
    key = json.dumps([context or {}, nag], sort_keys=True, default=str)
    if key not in _SYNTHESIZED:
        _SYNTHESIZED[key] = fresh_synth(context, nag)
    return _SYNTHESIZED[key]


def fresh_synth(context: dict[str, Any] | None = None, nag: bool = False) -> tuple[AsyncJobsStack, Template]:
    """A new synthesis, whatever was synthesized before."""
    app = cdk.App(context=context or {})
    stack = AsyncJobsStack(
        app, "AsyncJobs", config=AppConfig.from_context(app.node.try_get_context, app.node.get_all_context())
    )
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        app.synth()  # raises when a finding is not acknowledged
    return stack, Template.from_stack(stack)


@pytest.fixture(scope="session")
def default_stack() -> tuple[AsyncJobsStack, Template]:
    """The production stage: what most assertions are about (dev differs where tests say so)."""
    return synth({"stage": "prod"})


@pytest.fixture(scope="session")
def template(default_stack: tuple[AsyncJobsStack, Template]) -> Template:
    return default_stack[1]


def only(template: Template, resource_type: str, props: dict[str, Any] | None = None) -> tuple[str, Mapping[str, Any]]:
    """The one resource of ``resource_type`` (matching ``props``), as (logical id, definition)."""
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {resource_type} matching {props}, found {len(found)}"
    return next(iter(found.items()))


def function_id(template: Template, handler: str) -> str:
    return only(template, "AWS::Lambda::Function", {"Handler": handler})[0]
