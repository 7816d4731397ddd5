#!/usr/bin/env python3
"""CDK entry point: ``cdk synth`` / ``cdk deploy`` run this (see cdk.json)."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.async_jobs_stack import AsyncJobsStack
from stacks.config import AppConfig

app = cdk.App()
config = AppConfig.from_context(app.node.try_get_context, app.node.get_all_context())
AsyncJobsStack(
    app,
    app.node.try_get_context("stack_name") or config.stack_name,
    config=config,
    description=f"{config.name}: asynchronous request-reply API for long-running work",
)
# Every synth is checked against AWS Solutions best practices; findings fail the synth.
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
app.synth()
