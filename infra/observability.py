"""Alarms and one dashboard: errors, throttles and latency per ``live`` alias, the API, the state machines
and the work queues gave up on.

Handlers log, trace and emit metrics with Powertools (namespace ``O``); this construct
watches what AWS measures for them. Alarms carry no action by default: subscribe an
SNS topic or a chat integration to them after deploy (see infra/README.md).

The economy profile (``essential_only``) keeps only the alarms that say O is failing its users — the API
answering 5xx, agent runs failing, evolutions failing — and no dashboard: each alarm bills $0.10 a month
and the dashboard $3 whether anything runs or not, and the latency alarms would fire on what economy does by
design (the first request after the database paused waits for it to resume). The per-function graphs stay
free in the console's automatic Lambda and API Gateway dashboards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

FIVE_MINUTES = Duration.minutes(5)
# The alarms the economy profile keeps.
ESSENTIAL_ALARMS = ("Gateway5xx", "AgentLoopFailed", "EvolutionLoopFailed")


@dataclass(frozen=True)
class Watched:
    """A function to watch, through its alias when it has one, and its p99 latency budget.

    ``alias`` names an alias CloudFormation does not own (the agent step's, see infra/rollout.py):
    CDK's metrics of an imported alias name it as the function, which Lambda never reports."""

    function: lambda_.IFunction
    p99_budget: Duration
    alias: str | None = None

    def metric(self, name: str, statistic: str) -> cw.Metric:
        if self.alias is None:
            return self.function.metric(name, period=FIVE_MINUTES, statistic=statistic)
        function_name = self.function.function_name
        return cw.Metric(
            namespace="AWS/Lambda",
            metric_name=name,
            dimensions_map={"FunctionName": function_name, "Resource": f"{function_name}:{self.alias}"},
            period=FIVE_MINUTES,
            statistic=statistic,
        )


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, Watched],
        rest_api: apigw.RestApi,
        state_machines: Mapping[str, sfn.StateMachine],
        dead_letter_queues: Mapping[str, sqs.IQueue] | None = None,
        essential_only: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.essential_only = essential_only
        self.alarms: dict[str, cw.Alarm] = {}
        widgets: list[cw.IWidget] = []
        for name, watched in functions.items():
            errors = watched.metric("Errors", "Sum")
            throttles = watched.metric("Throttles", "Sum")
            p99 = watched.metric("Duration", "p99")
            self._alarm(f"{name}Errors", errors, 5, f"{name}: 5 or more errors in 5 minutes")
            self._alarm(f"{name}Throttles", throttles, 1, f"{name}: invocations throttled")
            self._alarm(
                f"{name}LatencyP99",
                p99,
                watched.p99_budget.to_milliseconds(),
                f"{name}: p99 duration over {watched.p99_budget.to_seconds()} s",
                periods=3,
            )
            widgets.append(cw.GraphWidget(title=f"{name} errors / throttles", left=[errors, throttles]))
            widgets.append(cw.GraphWidget(title=f"{name} duration p99", left=[p99]))

        server_errors = rest_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum")
        client_errors = rest_api.metric_client_error(period=FIVE_MINUTES, statistic="Sum")
        api_p99 = rest_api.metric_latency(period=FIVE_MINUTES, statistic="p99")
        self._alarm("Gateway5xx", server_errors, 5, "API: 5 or more 5xx answers in 5 minutes")
        # Message sends wait on the LLM; 20 s at p99 means runs are slow, not one busy route.
        self._alarm("GatewayLatencyP99", api_p99, 20_000, "API: p99 latency over 20 s", periods=3)
        widgets.append(cw.GraphWidget(title="API 4xx / 5xx", left=[client_errors, server_errors]))
        widgets.append(cw.GraphWidget(title="API latency p99", left=[api_p99]))

        for name, machine in state_machines.items():
            failed = machine.metric_failed(period=FIVE_MINUTES, statistic="Sum")
            timed_out = machine.metric_timed_out(period=FIVE_MINUTES, statistic="Sum")
            throttled = machine.metric_throttled(period=FIVE_MINUTES, statistic="Sum")
            self._alarm(f"{name}Failed", failed, 1, f"{name}: executions failed")
            self._alarm(f"{name}TimedOut", timed_out, 1, f"{name}: executions timed out")
            widgets.append(cw.GraphWidget(title=f"{name} failed / timed out / throttled",
                                          left=[failed, timed_out, throttled]))  # fmt: skip

        for name, queue in (dead_letter_queues or {}).items():
            # Not NumberOfMessagesSent: SQS counts only what a client sends, never what its redrive moves.
            # A function consumes these queues at once, so their depth rarely shows either; every dead
            # letter is received at least once.
            received = queue.metric_number_of_messages_received(period=FIVE_MINUTES, statistic="Sum")
            self._alarm(f"{name}DeadLetters", received, 1, f"{name}: work given up after its last delivery")
            widgets.append(cw.GraphWidget(title=f"{name} dead letters received", left=[received]))

        self.dashboard: cw.Dashboard | None = None
        if essential_only:
            return
        stack = Stack.of(self)
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            # Dashboards are global to the account: the region keeps the same stack in two regions apart.
            dashboard_name=f"{stack.stack_name}-{stack.region}",
            widgets=[widgets[i : i + 2] for i in range(0, len(widgets), 2)],
        )

    def _alarm(self, name: str, metric: cw.Metric, threshold: float, description: str, periods: int = 1) -> None:
        if self.essential_only and name not in ESSENTIAL_ALARMS:
            return
        self.alarms[name] = cw.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
