"""The REST API: POST /jobs, GET /jobs, GET and DELETE /jobs/{job_id}, on three functions
(submit; status, which also lists; cancel).

Regional endpoint (an edge-optimized API can never raise the 29 s integration timeout; a
Regional one can, through a service-quota increase), AWS_IAM authorization on every
method, a JSON-schema request validator on POST, stage throttling, JSON access logs and
X-Ray tracing.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from jobs.settings import Settings
from stacks.api_account import ApiGatewayAccount
from stacks.config import AppConfig
from stacks.job_store import OWNER_INDEX, JobStore
from stacks.python_function import LAMBDAS_DIR, PythonFunction, acknowledge, log_group
from stacks.worker import Worker

# GET /jobs query parameters, all optional (checked by the status function).
LIST_PARAMETERS = ("status", "limit", "next_token")
SUBMIT_REQUEST_SCHEMA = LAMBDAS_DIR / "jobs" / "schemas" / "submit_request.json"

# One JSON line per request, with what an operator needs to trace a 5XX or a slow call.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.userArn",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "errorMessage": "$context.error.message",
    "integrationErrorMessage": "$context.integrationErrorMessage",
    "xrayTraceId": "$context.xrayTraceId",
}


class JobsApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        store: JobStore,
        worker: Worker,
        environment: dict[str, str],
        account: ApiGatewayAccount,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config, self._environment = config, environment
        self._timeout = Duration.seconds(config.api_integration_timeout_seconds)
        self._build_functions(store, worker)
        self._build_rest_api(account)
        self._build_routes()
        self._acknowledge_findings(config)

    def _api_function(
        self,
        construct_id: str,
        handler: str,
        description: str,
        layers: tuple[lambda_.ILayerVersion, ...] = (),
        **extra: str,
    ) -> PythonFunction:
        """A function behind the API: the integration timeout, API memory, the shared environment."""
        config = self._config
        return PythonFunction(
            self,
            construct_id,
            config=config,
            handler=handler,
            description=description,
            environment={**self._environment, **extra},
            timeout=self._timeout,
            memory_size=config.api_function_memory_mb,
            cold_start=config.api_cold_start,
            provisioned_concurrency=config.api_provisioned_concurrency,
            layers=layers,
        )

    def _build_functions(self, store: JobStore, worker: Worker) -> None:
        """Submit, status and cancel, each with only the permissions it uses."""
        api_function = self._api_function
        submit = api_function(
            "Submit",
            "jobs.handlers.submit.handler",
            "POST /jobs: stores a job and hands it to the worker",
            worker.sdk_layers,
            **Settings.variables(idempotency_table_name=store.idempotency_table.table_name),
            **worker.dispatch_environment(),
        )
        self.submit_function = submit.function
        # What API Gateway invokes per function: the function, or its live alias (api_cold_start).
        self.invoked: dict[str, lambda_.IFunction] = {"Submit": submit.invoked}
        invoked = self.invoked
        store.grant_jobs(self.submit_function, "dynamodb:PutItem", "dynamodb:UpdateItem")
        store.idempotency_table.grant(
            self.submit_function,
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        )
        worker.grant_dispatch(submit)

        status = api_function(
            "Status",
            "jobs.handlers.status.handler",
            "GET /jobs/{job_id} and GET /jobs: a job's status, progress and result; the caller's jobs",
        )
        self.status_function = status.function
        invoked["Status"] = status.invoked
        store.grant_jobs(self.status_function, "dynamodb:GetItem", "dynamodb:BatchGetItem")
        store.grant_query_index(self.status_function, OWNER_INDEX)
        store.grant_results(self.status_function, "s3:GetObject")

        cancel = api_function(
            "Cancel",
            "jobs.handlers.cancel.handler",
            "DELETE /jobs/{job_id}: cancels a job (at once if pending, cooperatively if running)",
            worker.sdk_layers,
            **worker.cancel_environment(),
        )
        self.cancel_function = cancel.function
        invoked["Cancel"] = cancel.invoked
        store.grant_jobs(self.cancel_function, "dynamodb:GetItem", "dynamodb:UpdateItem")
        worker.grant_cancel(cancel)

    def _build_rest_api(self, account: ApiGatewayAccount) -> None:
        """The Regional REST API and its stage: IAM auth, throttling, tracing, access logs."""
        config = self._config
        access_logs = log_group(self, "AccessLogs", config)
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            # The name is the ApiName dimension of every API Gateway metric: one per stack, so
            # alarms watch this stage's API and no other (AWS names no API; CDK's default is RestApi).
            rest_api_name=Stack.of(self).stack_name,
            description=f"{config.app_name}: submit long-running jobs and poll their status",
            endpoint_configuration=apigw.EndpointConfiguration(types=[apigw.EndpointType.REGIONAL]),
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=config.api_stage_name,
                throttling_rate_limit=config.api_throttle_rate_limit,
                throttling_burst_limit=config.api_throttle_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        account.follows(self.rest_api.node.default_child)  # type: ignore[arg-type]  # the CfnRestApi
        account.needed_by(self.rest_api.deployment_stage)  # access logs need the account's role
        # API Gateway's own errors (validation, auth, throttling) as {"message": ...} too.
        self.rest_api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            templates={"application/json": '{"message": "$context.error.validationErrorString"}'},
        )

    def _build_routes(self) -> None:
        """POST and GET /jobs, GET and DELETE /jobs/{job_id}, validated before any function runs."""
        invoked, timeout = self.invoked, self._timeout
        schema = json.loads(SUBMIT_REQUEST_SCHEMA.read_text())
        model = apigw.CfnModel(
            self,
            "SubmitJobRequestModel",
            rest_api_id=self.rest_api.rest_api_id,
            content_type="application/json",
            name="SubmitJobRequest",
            description="Body of POST /jobs",
            schema=schema,
        )
        # A stage serves a deployment, a snapshot taken when it is created: a changed model
        # (a new task, say) must make a new deployment, or the stage keeps validating against
        # the old one. The methods are hashed into the deployment's logical id by CDK; the
        # model, an L1 here, is added by hand.
        deployment = self.rest_api.latest_deployment
        assert deployment is not None  # deploy=True, the default
        deployment.add_to_logical_id({"SubmitJobRequest": schema})
        validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )

        jobs = self.rest_api.root.add_resource("jobs")
        jobs.add_method(
            "POST",
            apigw.LambdaIntegration(invoked["Submit"], proxy=True, timeout=timeout),
            request_validator=validator,
            request_models={"application/json": apigw.Model.from_model_name(self, "SubmitModel", model.ref)},
        )
        jobs.add_method(
            "GET",
            apigw.LambdaIntegration(invoked["Status"], proxy=True, timeout=timeout),
            request_validator=validator,
            request_parameters={f"method.request.querystring.{name}": False for name in LIST_PARAMETERS},
        )
        job = jobs.add_resource("{job_id}")
        for http_method, function in (("GET", invoked["Status"]), ("DELETE", invoked["Cancel"])):
            job.add_method(
                http_method,
                apigw.LambdaIntegration(function, proxy=True, timeout=timeout),
                request_validator=validator,
                request_parameters={"method.request.path.job_id": True},
            )
        # (HTTP method, resource path) of every method: the dashboard graphs each route.
        self.routes = [(method.http_method, method.resource.path) for method in self.rest_api.methods]

    def _acknowledge_findings(self, config: AppConfig) -> None:
        acknowledge(
            self.rest_api,
            "AwsSolutions-COG4",
            "Methods use AWS_IAM authorization (SigV4), which cdk-nag does not count as an authorizer.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG6",
            "Execution logs go to a log group API Gateway creates itself, outside the stack and kept forever; "
            "JSON access logs, X-Ray traces, the functions' logs and the 5XX alarm cover each request.",
        )
        if not config.waf_enabled:
            acknowledge(
                self.rest_api,
                "AwsSolutions-APIG3",
                "WAF is off in this stage (waf_enabled=false; on in prod): IAM authorization and stage "
                "throttling guard the API, and a web ACL costs money every month.",
            )
