"""API Gateway (REST, regional) in front of the API Lambda's ``live`` alias.

Every path goes to the one FastAPI app (Letta's ``/v1/...`` routes). The stage throttles
requests, writes JSON access logs and traces with X-Ray. Bodies are capped by the app
(``O_MAX_BODY_BYTES``, answered with a JSON 413) below API Gateway's own 10 MB limit.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.service_function import MANAGED, acknowledge

STAGE = "o"


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
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
