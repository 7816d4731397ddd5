"""A small test-only CDK app with synchronous routes that misbehave on purpose.

Used to check the local runtime's API Gateway semantics that the real app never shows:
504 past the integration timeout, 502 for a malformed proxy response, 429 throttling.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_

app = cdk.App()
stack = cdk.Stack(app, "SlowApp")
code = lambda_.Code.from_asset(str(Path(__file__).parent / "functions"))


def function(name: str, handler: str, timeout: int = 10) -> lambda_.Function:
    return lambda_.Function(
        stack,
        name,
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler=handler,
        code=code,
        timeout=cdk.Duration.seconds(timeout),
    )


api = apigw.RestApi(
    stack,
    "Api",
    deploy_options=apigw.StageOptions(stage_name="test", throttling_rate_limit=2, throttling_burst_limit=3),
)
api.root.add_resource("slow").add_method(
    "GET", apigw.LambdaIntegration(function("Slow", "routes.slow"), timeout=cdk.Duration.seconds(1))
)
api.root.add_resource("malformed").add_method("GET", apigw.LambdaIntegration(function("Malformed", "routes.malformed")))
api.root.add_resource("crash").add_method("GET", apigw.LambdaIntegration(function("Crash", "routes.crash")))
echo = api.root.add_resource("echo")
echo.add_method("GET", apigw.LambdaIntegration(function("Echo", "routes.echo")))
echo.add_resource("{item}").add_method("GET", apigw.LambdaIntegration(function("EchoItem", "routes.echo")))
app.synth()
