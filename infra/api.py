"""API Gateway (REST, regional) in front of the API Lambda's ``live`` alias, and the streaming API.

Every path goes to the one FastAPI app (Letta's ``/v1/...`` routes). The stage throttles
requests, writes JSON access logs and traces with X-Ray. Bodies are capped by the app
(``O_MAX_BODY_BYTES``, answered with a JSON 413) below API Gateway's own 10 MB limit.

``/stream/...`` serves the same app from a second function whose responses stream: API Gateway's
response streaming (``responseTransferMode: STREAM``, which invokes the function with
``InvokeWithResponseStream``) in front of the app under uvicorn behind the Lambda Web Adapter
(``functions/api/stream.py``), so SSE chunks reach the client as they are written and a stream
may last 15 minutes instead of 29 seconds. The buffered API keeps Mangum (its handler-level tests
run it with API Gateway events; only replies that stream need the other function).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.service_function import MANAGED, FunctionAssets, FunctionNetwork, ServiceFunction, acknowledge
from o.config import env_name

STAGE = "o"
# Where the streaming API answers: <ApiUrl>stream/v1/... (the output StreamUrl).
STREAM_PATH = "stream"
# The Lambda Web Adapter's public layer (its documentation's "Zip Packages" page; commercial regions),
# referenced by ARN: nothing is downloaded at synth.
WEB_ADAPTER_ACCOUNT = "753240598075"
WEB_ADAPTER_LAYER_VERSION = 30
# run by the adapter's wrapper (/opt/bootstrap) as "$LAMBDA_TASK_ROOT/<handler>"
STREAM_HANDLER = "functions/api/run.sh"
STREAM_PORT = 8080
# API Gateway ends a streamed response after 15 minutes; so does Lambda.
STREAM_TIMEOUT = Duration.minutes(15)
# How long the streaming function drives a streamed run itself before the state machine takes the rest
# over: one action (an LLM call with its retries, or a tool) may still finish after it, within the 15.
STREAM_INLINE_S = 600


def web_adapter_layer(scope: Construct) -> lambda_.ILayerVersion:
    arn = (
        f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{WEB_ADAPTER_ACCOUNT}:layer:"
        f"LambdaAdapterLayerArm64:{WEB_ADAPTER_LAYER_VERSION}"
    )
    return lambda_.LayerVersion.from_layer_version_arn(scope, "WebAdapter", arn)


def stream_environment() -> dict[str, str]:
    """The Web Adapter's settings and the app's: stream responses, drive streamed runs here."""
    return {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "AWS_LWA_PORT": str(STREAM_PORT),
        # the app is ready once its database answers
        "AWS_LWA_READINESS_CHECK_PATH": "/v1/health/",
        # /stream/v1/agents → /v1/agents
        "AWS_LWA_REMOVE_BASE_PATH": f"/{STREAM_PATH}",
        env_name("agent", "stream_inline_s"): str(STREAM_INLINE_S),
    }


def streaming_function(
    scope: Construct,
    construct_id: str,
    *,
    assets: FunctionAssets,
    environment: Mapping[str, str],
    network: FunctionNetwork,
) -> ServiceFunction:
    """The streaming API's function: the API function's code and settings, run by the Web Adapter."""
    service = ServiceFunction(
        scope,
        construct_id,
        assets=assets,
        handler=STREAM_HANDLER,
        description="O streaming API: the Letta v1 REST API (FastAPI + uvicorn) behind the Lambda Web Adapter",
        service="o-api-stream",
        memory_mb=1024,
        timeout=STREAM_TIMEOUT,
        environment={**environment, **stream_environment()},
        network=network,
    )
    service.function.add_layers(web_adapter_layer(service))
    return service


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        stream_handler: lambda_.IFunction | None = None,
        name: str,
        throttle_rate: float,
        throttle_burst: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.rest_api = apigw.LambdaRestApi(
            self,
            "RestApi",
            rest_api_name=name,
            description="O: Letta v1 REST API",
            handler=handler,
            proxy=True,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            # The logging role is account-wide (AWS::ApiGateway::Account): other APIs may rely on it.
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=throttle_rate,
                throttling_burst_limit=throttle_burst,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        self.url = self.rest_api.url
        CfnOutput(self, "Url", value=self.rest_api.url, description="base URL of O's API (append v1/...)")
        self.stream_url: str | None = None
        if stream_handler is not None:
            self.stream_url = self._stream(stream_handler)
        acknowledge(
            self,
            ("AwsSolutions-APIG2", "one proxy resource forwards every route to the app, which validates "
             "each request body against its Pydantic models and answers 4xx JSON"),
            ("AwsSolutions-APIG3", "no WAF by default: it costs ~$6/month idle; the stage throttles and the "
             "app rejects oversized bodies and unauthenticated calls"),
            ("AwsSolutions-APIG4", "the app authenticates every call with O's own API keys (Bearer, hashed in "
             "Postgres) as Letta clients expect; API Gateway authorizers would need a second credential"),
            ("AwsSolutions-COG4", "same as APIG4: O's API keys, not Cognito, identify callers"),
            (f"AwsSolutions-IAM4[Policy::{MANAGED}AmazonAPIGatewayPushToCloudWatchLogs]",
             "the managed policy API Gateway's account-level logging role is made for"),
        )  # fmt: skip

    def _stream(self, handler: lambda_.IFunction) -> str:
        """``/stream`` and everything under it → the streaming function, in STREAM transfer mode.

        A static resource beside the root's ``{proxy+}`` takes precedence for the paths it names, and the
        first path segment alone decides, so no other route changes. The stage's throttling, access
        logs and X-Ray apply as to every method; API keys are checked by the app on every request.
        """
        integration = apigw.LambdaIntegration(
            handler,
            proxy=True,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=STREAM_TIMEOUT,
        )
        resource = self.rest_api.root.add_resource(STREAM_PATH)
        resource.add_method("ANY", integration)
        resource.add_proxy(default_integration=integration, any_method=True)
        url = f"{self.rest_api.url}{STREAM_PATH}/"
        CfnOutput(self, "StreamUrl", value=url, description="base URL of O's streaming API (append v1/...)")
        return url
